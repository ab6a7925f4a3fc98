"""Who may act: a user row plus its account (active flag, password, lock-out)."""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.auth.actor import Actor, Via
from crm_core.models import User, UserAccount

HUMAN_ROLES = ("rep", "manager", "admin")


def account_of(session: Session, user_id: int, *, create: bool = False) -> UserAccount | None:
    account = session.get(UserAccount, user_id)
    if account is None and create:
        account = UserAccount(user_id=user_id, active=True, must_change_password=False, failed_sign_ins=0)
        session.add(account)
        session.flush()
    return account


def is_active(session: Session, user: User) -> bool:
    # No account row: a user created by an import or the demo; active, but with no password yet.
    account = session.get(UserAccount, user.id)
    return account is None or account.active


def actor_for(user: User, via: Via) -> Actor:
    role = user.role if user.role in HUMAN_ROLES else "rep"
    return Actor(user_id=user.id, name=user.name, role=role, via=via)


def find_user(session: Session, name_or_email: str) -> User | None:
    """By exact name first, then by name or email ignoring case; None when unknown or ambiguous."""
    text = (name_or_email or "").strip()
    if not text:
        return None
    exact = session.scalar(select(User).where(User.name == text))
    if exact is not None:
        return exact
    key = text.lower()
    rows = list(session.scalars(select(User).where((func.lower(User.name) == key) | (func.lower(User.email) == key)).limit(2)))
    return rows[0] if len(rows) == 1 else None


def active_user_named(session: Session, name_or_email: str) -> User | None:
    user = find_user(session, name_or_email)
    return user if user is not None and is_active(session, user) else None
