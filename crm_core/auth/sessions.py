"""Signing in and out of the dashboard: passwords, lock-out, OIDC, expiring sessions.

A successful sign-in creates an `AuthSession` row and hands the browser a random token (kept in
Streamlit's session state, never in a URL). Every page run resolves the token again, so an
expired, signed-out or deactivated session stops working at the next click. Sign-ins, failures,
lock-outs and sign-outs are audited. A failed attempt returns a result instead of raising, so the
caller's unit of work commits the failure count and its audit entry.
"""
from __future__ import annotations

import secrets
from datetime import timedelta

from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.accounts import account_of, actor_for, find_user, is_active
from crm_core.auth.actor import Actor, Via
from crm_core.auth.passwords import check_strength, hash_password, needs_rehash, verify_password
from crm_core.auth.tokens import digest
from crm_core.errors import UserError
from crm_core.models import AuthSession, User
from crm_core.oversight.audit import record, record_as
from crm_core.settings import get_settings

SESSION_KEY = "crm_session_token"
WRONG = "That name or password is not right. Check both and try again."
_TOUCH_EVERY = timedelta(minutes=1)


class SignInResult(BaseModel):
    ok: bool
    message: str = ""
    actor: Actor | None = None
    token: str | None = None
    must_change_password: bool = False


def start_session(session: Session, user_id: int, *, via: Via) -> str:
    """A new browser session for `user_id`; returns the raw token the browser keeps."""
    now = clock.now()
    raw = secrets.token_urlsafe(32)
    session.add(AuthSession(token_hash=digest(raw), user_id=user_id, via=via, created_at=now, last_seen_at=now,
                            expires_at=now + timedelta(hours=get_settings().session_hours)))
    session.flush()
    return raw


def _failed(session: Session, login: str, why: str, user: User | None) -> None:
    record(session, "auth.sign_in_failed", actor=(user.name if user else login[:100]) or "?",
           subject_type="user" if user else None, subject_id=user.id if user else None, via="password", why=why)


def sign_in_password(session: Session, login: str, password: str) -> SignInResult:
    """Check a name (or email) and password. Locks the account after repeated failures."""
    settings = get_settings()
    now = clock.now()
    user = find_user(session, login)
    account = account_of(session, user.id) if user is not None else None
    if user is None or account is None or account.password_hash is None:
        verify_password(None, password)  # the same time as a real check: no probing for names
        _failed(session, login, "unknown user" if user is None else "no password set", user)
        return SignInResult(ok=False, message=WRONG)
    if not account.active:
        verify_password(None, password)
        _failed(session, login, "user deactivated", user)
        return SignInResult(ok=False, message=WRONG)
    if account.locked_until is not None and now < account.locked_until:
        _failed(session, login, "locked", user)
        minutes = max(1, round((account.locked_until - now).total_seconds() / 60))
        return SignInResult(ok=False, message=f"Too many wrong passwords: this account is locked for {minutes} more "
                                              f"minute{'s' if minutes != 1 else ''}. An admin can unlock it by setting a new password.")
    if not verify_password(account.password_hash, password):
        account.failed_sign_ins += 1
        _failed(session, login, "wrong password", user)
        if account.failed_sign_ins >= settings.max_failed_sign_ins:
            account.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            account.failed_sign_ins = 0
            record(session, "auth.locked_out", actor=user.name, subject_type="user", subject_id=user.id,
                   until=account.locked_until, after_failures=settings.max_failed_sign_ins)
            return SignInResult(ok=False, message=f"Too many wrong passwords: this account is locked for "
                                                  f"{settings.lockout_minutes:g} minutes.")
        session.flush()
        return SignInResult(ok=False, message=WRONG)
    if needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.failed_sign_ins = 0
    account.locked_until = None
    account.last_sign_in_at = now
    actor = actor_for(user, "password")
    token = start_session(session, user.id, via="password")
    record_as(session, "auth.signed_in", actor=actor, subject_type="user", subject_id=user.id)
    return SignInResult(ok=True, actor=actor, token=token, must_change_password=account.must_change_password)


def sign_in_oidc(session: Session, email: str | None, *, issuer: str | None = None) -> SignInResult:
    """The identity provider vouched for `email`: map it to one active user with that email."""
    key = (email or "").strip().lower()
    users = list(session.scalars(select(User).where(func.lower(User.email) == key).limit(2))) if key else []
    active = [u for u in users if is_active(session, u)]
    if len(active) != 1:
        why = "no email from the provider" if not key else ("no active user with this email" if not active else "two users share this email")
        record(session, "auth.sign_in_failed", actor=key or "?", via="oidc", why=why, issuer=issuer)
        message = ("Your sign-in worked, but no active user of this CRM has the email "
                   f"{key or '(none given)'}. Ask an admin to add you with that email.")
        if len(active) > 1:
            message = f"Two users of this CRM have the email {key}; ask an admin to fix that before signing in."
        return SignInResult(ok=False, message=message)
    user = active[0]
    account = account_of(session, user.id, create=True)
    account.last_sign_in_at = clock.now()
    actor = actor_for(user, "oidc")
    token = start_session(session, user.id, via="oidc")
    record_as(session, "auth.signed_in", actor=actor, subject_type="user", subject_id=user.id, issuer=issuer)
    return SignInResult(ok=True, actor=actor, token=token)


def resolve_session(session: Session, raw: str | None) -> Actor | None:
    """The signed-in user of a browser session, or None when unknown, ended, expired or idle too long."""
    if not raw:
        return None
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == digest(raw)))
    if row is None or row.ended_at is not None:
        return None
    now = clock.now()
    idle = timedelta(minutes=get_settings().session_idle_minutes)
    if now >= row.expires_at or now - row.last_seen_at >= idle:
        return None
    user = session.get(User, row.user_id)
    if user is None or not is_active(session, user):
        return None
    if now - row.last_seen_at >= _TOUCH_EVERY:
        session.execute(update(AuthSession).where(AuthSession.id == row.id).values(last_seen_at=now)
                        .execution_options(synchronize_session=False))
    return actor_for(user, row.via)  # type: ignore[arg-type]


def end_session(session: Session, raw: str | None, *, actor: Actor | None) -> None:
    """Sign out: the token stops working at once, audited."""
    if not raw:
        return
    row = session.scalar(select(AuthSession).where(AuthSession.token_hash == digest(raw)))
    if row is None or row.ended_at is not None:
        return
    row.ended_at = clock.now()
    if actor is not None:
        record_as(session, "auth.signed_out", actor=actor, subject_type="user", subject_id=row.user_id)


def end_all_sessions(session: Session, user_id: int) -> int:
    """Every browser of a user signs out (deactivation, a new password)."""
    return session.execute(update(AuthSession).where(AuthSession.user_id == user_id, AuthSession.ended_at.is_(None))
                           .values(ended_at=clock.now()).execution_options(synchronize_session=False)).rowcount


def change_own_password(session: Session, actor: Actor, current: str, new: str) -> bool:
    """The signed-in user replaces their password (required after a one-time password)."""
    if actor.user_id is None:
        raise UserError("change password: only a signed-in user can change their password")
    user = session.get(User, actor.user_id)
    account = account_of(session, actor.user_id)
    if user is None or account is None or not verify_password(account.password_hash, current):
        raise UserError("change password: the current password is not right")
    if new == current:
        raise UserError("change password: the new password must differ from the current one")
    check_strength(new, name=user.name)
    account.password_hash = hash_password(new)
    account.password_set_at = clock.now()
    account.must_change_password = False
    session.flush()
    record_as(session, "user.password_changed", actor=actor, subject_type="user", subject_id=user.id, by="self")
    return True
