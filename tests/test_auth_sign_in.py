"""Sign-in services: passwords and lock-out, OIDC identities mapped by email, session expiry, the first admin."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from auth_helpers import actor_of, add_user
from crm_core import clock
from crm_core.auth.passwords import hash_password, verify_password
from crm_core.auth.sessions import resolve_session, sign_in_oidc, sign_in_password, start_session
from crm_core.db import unit_of_work
from crm_core.errors import UserError
from crm_core.models import AuditEntry, AuthSession, User, UserAccount
from crm_core.services import users

PASSWORD = "correct horse battery"


def test_passwords_are_argon2id_hashes_never_the_text():
    digest = hash_password(PASSWORD)
    assert digest.startswith("$argon2id$") and PASSWORD not in digest
    assert verify_password(digest, PASSWORD) and not verify_password(digest, PASSWORD + "!")
    assert not verify_password(None, PASSWORD) and not verify_password("garbage", PASSWORD)


def test_lock_out_after_repeated_failures_and_a_success_resets_the_count(store, monkeypatch):
    monkeypatch.setenv("CRM_MAX_FAILED_SIGN_INS", "3")
    with unit_of_work() as s:
        uid = add_user(s, "Rick Rep", "rep", password=PASSWORD).id
    for _ in range(2):
        with unit_of_work() as s:
            assert not sign_in_password(s, "Rick Rep", "wrong").ok
    with unit_of_work() as s:
        result = sign_in_password(s, "rick rep", PASSWORD)
    assert result.ok and result.actor.via == "password" and result.token
    with unit_of_work() as s:
        assert s.get(UserAccount, uid).failed_sign_ins == 0
        assert resolve_session(s, result.token).name == "Rick Rep"
    for _ in range(3):
        with unit_of_work() as s:
            last = sign_in_password(s, "Rick Rep", "wrong")
    assert "locked for 15 minutes" in last.message
    with unit_of_work() as s:
        assert not sign_in_password(s, "Rick Rep", PASSWORD).ok  # locked: the right password waits
        s.get(UserAccount, uid).locked_until = clock.now() - timedelta(seconds=1)
    with unit_of_work() as s:
        assert sign_in_password(s, "Rick Rep", PASSWORD).ok


def test_an_unknown_name_and_a_user_without_password_get_the_same_answer(store):
    with unit_of_work() as s:
        add_user(s, "Imported Owner", "rep")  # created by an import: no password
        a = sign_in_password(s, "Imported Owner", "anything")
        b = sign_in_password(s, "Nobody", "anything")
    assert not a.ok and a.message == b.message


def test_oidc_signs_in_the_one_active_user_with_that_email(store):
    with unit_of_work() as s:
        add_user(s, "Maria Manager", "manager", email="Maria@Seller.example")
        add_user(s, "Gone Person", "rep", email="gone@seller.example", active=False)
        add_user(s, "Twin One", "rep", email="twin@seller.example")
        add_user(s, "Twin Two", "rep", email="twin@seller.example")
    with unit_of_work() as s:
        ok = sign_in_oidc(s, "maria@seller.example", issuer="https://idp.example")
        assert ok.ok and ok.actor.via == "oidc" and ok.actor.role == "manager"
        assert resolve_session(s, ok.token).via == "oidc"
        assert "no active user" in sign_in_oidc(s, "gone@seller.example").message
        assert "no active user" in sign_in_oidc(s, "stranger@elsewhere.example").message
        assert "Two users" in sign_in_oidc(s, "twin@seller.example").message
        assert not sign_in_oidc(s, None).ok
    with unit_of_work(readonly=True) as s:
        failed = list(s.scalars(select(AuditEntry).where(AuditEntry.event == "auth.sign_in_failed")))
        signed = s.scalars(select(AuditEntry).where(AuditEntry.event == "auth.signed_in")).one()
    assert len(failed) == 4 and all(e.details["via"] == "oidc" for e in failed)
    assert signed.actor == "Maria Manager (oidc)"


def test_sessions_end_at_their_expiry_when_idle_and_when_the_user_is_deactivated(store):
    with unit_of_work() as s:
        rick = add_user(s, "Rick Rep", "rep", password=PASSWORD)
        admin = add_user(s, "Ada Admin", "admin")
        tokens = [start_session(s, rick.id, via="password") for _ in range(3)]
        rows = {r.token_hash: r for r in s.scalars(select(AuthSession))}
        first, second = list(rows.values())[:2]
        first.expires_at = clock.now() - timedelta(seconds=1)
        second.last_seen_at = clock.now() - timedelta(minutes=61)
    with unit_of_work() as s:
        assert [resolve_session(s, t) is not None for t in tokens] == [False, False, True]
        assert resolve_session(s, "made-up") is None and resolve_session(s, None) is None
        users.set_active(s, "Rick Rep", active=False, actor=actor_of(admin))
    with unit_of_work() as s:
        assert resolve_session(s, tokens[2]) is None
        assert not sign_in_password(s, "Rick Rep", PASSWORD).ok


def test_first_start_creates_one_admin_with_a_one_time_or_configured_password(store, monkeypatch):
    with unit_of_work() as s:
        name, one_time = users.ensure_first_admin(s)
    assert name == "Admin" and len(one_time) >= 12
    with unit_of_work() as s:
        assert users.ensure_first_admin(s) is None  # there is an admin now
        result = sign_in_password(s, "Admin", one_time)
    assert result.ok and result.must_change_password


def test_the_admin_password_can_come_from_the_environment(store, monkeypatch):
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", "short")
    with pytest.raises(UserError, match="at least 10 characters"), unit_of_work() as s:
        users.ensure_first_admin(s)
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", PASSWORD)
    with unit_of_work() as s:
        assert users.ensure_first_admin(s) == ("Admin", None)
    with unit_of_work() as s:
        result = sign_in_password(s, "Admin", PASSWORD)
        assert result.ok and not result.must_change_password


def test_demo_passwords_only_fill_users_without_one(store):
    with unit_of_work() as s:
        add_user(s, "Real Person", "rep", password=PASSWORD)
        add_user(s, "Demo Rep", "rep")
        assert users.set_demo_passwords(s) == 1
    with unit_of_work() as s:
        assert sign_in_password(s, "Demo Rep", users.DEMO_PASSWORD).ok
        assert not sign_in_password(s, "Real Person", users.DEMO_PASSWORD).ok
        assert s.scalar(select(User).where(User.name == "Real Person")) is not None
