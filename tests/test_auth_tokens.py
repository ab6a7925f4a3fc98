"""API tokens: issued once in the clear, stored hashed, verified to their owner, revocable, audited."""
from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from auth_helpers import ADMIN, actor_of, add_user
from crm_core.auth.tokens import issue_token, list_tokens, revoke_token, verify_token
from crm_core.db import unit_of_work
from crm_core.errors import PermissionDenied, UserError
from crm_core.models import ApiToken, AuditEntry
from crm_core.services import users


def test_issue_verify_revoke(store):
    with unit_of_work() as s:
        sam = add_user(s, "Sam Rep", "rep")
        sam_id = sam.id
        token_id, raw = issue_token(s, user_id=sam.id, name="nightly export", actor=actor_of(sam))
    assert raw.startswith("crm_") and len(raw) > 40
    with unit_of_work() as s:
        stored = s.get(ApiToken, token_id)
        assert stored.token_hash == hashlib.sha256(raw.encode()).hexdigest() and raw not in stored.token_hash
        actor = verify_token(s, raw)
        assert actor is not None and actor.user_id == sam_id and actor.role == "rep" and actor.via == "token"
        assert verify_token(s, raw + "x") is None and verify_token(s, "") is None and verify_token(s, "nonsense") is None
    with unit_of_work() as s:
        [view] = list_tokens(s, user_id=sam_id)
        assert view.name == "nightly export" and view.active and view.last_used_at is not None
        assert raw.startswith(view.prefix) and len(view.prefix) < 12
        revoke_token(s, token_id, actor=ADMIN)
    with unit_of_work() as s:
        assert verify_token(s, raw) is None
        assert not list_tokens(s)[0].active
        events = [(e.event, e.actor) for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert ("token.issued", "Sam Rep (password)") in events
    assert ("token.revoked", "Ada Admin (cli)") in events


def test_deactivated_owner_token_stops_working(store):
    with unit_of_work() as s:
        add_user(s, "Ada", "admin")
        mia = add_user(s, "Mia Manager", "manager")
        _, raw = issue_token(s, user_id=mia.id, name="script", actor=ADMIN)
    with unit_of_work() as s:
        assert verify_token(s, raw).name == "Mia Manager"
        users.set_active(s, "Mia Manager", active=False, actor=ADMIN)
    with unit_of_work() as s:
        assert verify_token(s, raw) is None


def test_only_admins_manage_other_peoples_tokens(store):
    with unit_of_work() as s:
        sam = add_user(s, "Sam Rep", "rep")
        mia = add_user(s, "Mia Manager", "manager")
        own_id, _ = issue_token(s, user_id=mia.id, name="mine", actor=actor_of(mia))
        with pytest.raises(PermissionDenied) as refused:
            issue_token(s, user_id=mia.id, name="sneaky", actor=actor_of(sam))
        assert refused.value.right == "manage_users" and "manage_users" in str(refused.value)
        with pytest.raises(PermissionDenied):
            revoke_token(s, own_id, actor=actor_of(sam))
        with pytest.raises(UserError, match="name"):
            issue_token(s, user_id=sam.id, name="  ", actor=actor_of(sam))
