"""Per-user API tokens for automation (scripts through the CLI, the HTTP API).

A token acts as its owner with the owner's role (`via="token"`). Only a SHA-256 digest is
stored: the raw token is 256 random bits, so a slow hash adds nothing, and a digest lets one
indexed lookup find it. The raw value is returned once, at issue. Issue and revoke are audited.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.accounts import actor_for, is_active
from crm_core.auth.actor import Actor
from crm_core.auth.rights import require
from crm_core.errors import NotFound, UserError
from crm_core.models import ApiToken, User
from crm_core.oversight.audit import record_as

PREFIX = "crm_"
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hint, not a log: write it at most once a minute


class TokenView(BaseModel):
    id: int
    user_id: int
    user_name: str
    name: str
    prefix: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def _check_may_manage(actor: Actor, user_id: int, doing: str) -> None:
    if actor.user_id is not None and actor.user_id == user_id:
        require(actor, "own_tokens", doing=doing)
    else:
        require(actor, "manage_users", doing=f"{doing} for another user")


def issue_token(session: Session, *, user_id: int, name: str, actor: Actor) -> tuple[int, str]:
    """A new token for `user_id`; returns its id and the raw token (shown once, never stored)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise UserError("token: give it a name of 1 to 100 characters that says what uses it (e.g. \"nightly export\")")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"token: user {user_id} not found")
    _check_may_manage(actor, user_id, "issue an API token")
    if not is_active(session, user):
        raise UserError(f"token: {user.name} is deactivated; a token for them would not work")
    raw = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user_id, name=name, token_hash=digest(raw), prefix=raw[: len(PREFIX) + 6],
                     created_at=clock.now(), created_by=actor.audit_name)
    session.add(token)
    session.flush()
    record_as(session, "token.issued", actor=actor, subject_type="user", subject_id=user_id,
              token_id=token.id, token_name=name, for_user=user.name)
    return token.id, raw


def verify_token(session: Session, raw: str) -> Actor | None:
    """The token's owner as an Actor (via="token"); None when unknown, revoked or the owner is inactive."""
    if not raw or not raw.startswith(PREFIX) or len(raw) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(raw)))
    if token is None or token.revoked_at is not None:
        return None
    user = session.get(User, token.user_id)
    if user is None or not is_active(session, user):
        return None
    now = clock.now()
    if token.last_used_at is None or now - token.last_used_at >= _TOUCH_EVERY:
        session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
                        .execution_options(synchronize_session=False))
    return actor_for(user, "token")


def revoke_token(session: Session, token_id: int, *, actor: Actor) -> TokenView:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} not found")
    _check_may_manage(actor, token.user_id, "revoke an API token")
    if token.revoked_at is None:
        token.revoked_at = clock.now()
        token.revoked_by = actor.audit_name
        session.flush()
        record_as(session, "token.revoked", actor=actor, subject_type="user", subject_id=token.user_id,
                  token_id=token.id, token_name=token.name)
    return _view(token, session.get(User, token.user_id))


def _view(token: ApiToken, user: User | None) -> TokenView:
    return TokenView(id=token.id, user_id=token.user_id, user_name=user.name if user else "?", name=token.name,
                     prefix=token.prefix, created_at=token.created_at, created_by=token.created_by,
                     last_used_at=token.last_used_at, revoked_at=token.revoked_at, revoked_by=token.revoked_by)


def list_tokens(session: Session, *, user_id: int | None = None) -> list[TokenView]:
    """Every token (or one user's), newest first, revoked ones included so the history stays visible."""
    q = select(ApiToken, User).join(User, User.id == ApiToken.user_id).order_by(ApiToken.id.desc())
    if user_id is not None:
        q = q.where(ApiToken.user_id == user_id)
    return [_view(token, user) for token, user in session.execute(q)]
