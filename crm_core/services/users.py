"""The people who use the CRM: list, add, passwords, roles, deactivation, the first admin.

Every change needs the `manage_users` right (except the first admin, created by the system on
first start) and is audited with who made it and how they signed in.
"""
from __future__ import annotations

import secrets
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.accounts import HUMAN_ROLES, account_of, find_user
from crm_core.auth.actor import Actor
from crm_core.auth.passwords import check_strength, hash_password
from crm_core.auth.rights import require
from crm_core.auth.sessions import end_all_sessions
from crm_core.errors import NotFound, UserError
from crm_core.models import User, UserAccount
from crm_core.oversight.audit import record_as
from crm_core.settings import get_settings

FIRST_ADMIN_NAME = "Admin"
# The demo book's users all sign in with this password, and only a store filled by `seed-demo` has it.
DEMO_PASSWORD = "demo-password"


class UserView(BaseModel):
    id: int
    name: str
    role: str
    team: str | None
    email: str | None = None
    active: bool = True
    has_password: bool = False
    locked_until: datetime | None = None
    last_sign_in_at: datetime | None = None


def list_users(session: Session) -> list[UserView]:
    """Managers first (they approve), then admins, then everyone else, by name."""
    managers_first = case((User.role == "manager", 0), (User.role == "admin", 1), else_=2)
    rows = session.execute(select(User, UserAccount).outerjoin(UserAccount, UserAccount.user_id == User.id)
                           .order_by(managers_first, User.name))
    return [
        UserView(id=u.id, name=u.name, role=u.role, team=u.team, email=u.email,
                 active=a is None or a.active, has_password=bool(a and a.password_hash),
                 locked_until=a.locked_until if a else None, last_sign_in_at=a.last_sign_in_at if a else None)
        for u, a in rows
    ]


def _user(session: Session, name_or_email: str) -> User:
    user = find_user(session, name_or_email)
    if user is None:
        raise NotFound(f"user {name_or_email!r} not found (or the name matches more than one user); "
                       "`python -m crm_core users list` shows everyone")
    return user


def _check_role(role: str) -> None:
    if role not in HUMAN_ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(HUMAN_ROLES)}")


def one_time_password() -> str:
    return secrets.token_urlsafe(12)


def add_user(session: Session, *, name: str, role: str, actor: Actor, email: str | None = None,
             team: str | None = None) -> UserView:
    require(actor, "manage_users", doing=f"add the user {name!r}")
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise UserError("add user: the name must be 1 to 200 characters")
    _check_role(role)
    if session.scalar(select(User.id).where(func.lower(User.name) == name.lower())) is not None:
        raise UserError(f"add user: {name!r} already exists; use set-password or set-role to change them")
    email = (email or "").strip() or None
    if email and ("@" not in email or len(email) > 320):
        raise UserError(f"add user {name}: {email!r} is not an email address")
    user = User(name=name, role=role, email=email, team=team)
    session.add(user)
    session.flush()
    account_of(session, user.id, create=True)
    record_as(session, "user.added", actor=actor, subject_type="user", subject_id=user.id, name=name, role=role, email=email)
    return _view(session, user)


def set_password(session: Session, name_or_email: str, *, actor: Actor, password: str | None = None) -> str | None:
    """Set a user's password; without one, a one-time password they must change at sign-in (returned).

    Unlocks the account and signs the user out everywhere.
    """
    user = _user(session, name_or_email)
    require(actor, "manage_users", doing=f"set {user.name}'s password")
    generated = None
    if password is None:
        generated = password = one_time_password()
    else:
        check_strength(password, name=user.name)
    account = account_of(session, user.id, create=True)
    account.password_hash = hash_password(password)
    account.password_set_at = clock.now()
    account.must_change_password = generated is not None
    account.failed_sign_ins = 0
    account.locked_until = None
    end_all_sessions(session, user.id)
    session.flush()
    record_as(session, "user.password_set", actor=actor, subject_type="user", subject_id=user.id, one_time=generated is not None)
    return generated


def _active_admins(session: Session) -> list[int]:
    rows = session.execute(select(User.id, UserAccount.active).outerjoin(UserAccount, UserAccount.user_id == User.id)
                           .where(User.role == "admin"))
    return [uid for uid, active in rows if active is None or active]


def set_role(session: Session, name_or_email: str, role: str, *, actor: Actor) -> UserView:
    user = _user(session, name_or_email)
    require(actor, "manage_users", doing=f"change {user.name}'s role")
    _check_role(role)
    if user.role == "admin" and role != "admin" and _active_admins(session) == [user.id]:
        raise UserError(f"set role: {user.name} is the only active admin; make someone else admin first")
    old = user.role
    user.role = role
    session.flush()
    record_as(session, "user.role_changed", actor=actor, subject_type="user", subject_id=user.id, old=old, new=role)
    return _view(session, user)


def set_active(session: Session, name_or_email: str, *, active: bool, actor: Actor) -> UserView:
    """Deactivate (sign-in, sessions and API tokens stop working at once) or reactivate a user."""
    user = _user(session, name_or_email)
    require(actor, "manage_users", doing=f"{'reactivate' if active else 'deactivate'} {user.name}")
    if not active and user.role == "admin" and _active_admins(session) == [user.id]:
        raise UserError(f"deactivate: {user.name} is the only active admin; make someone else admin first")
    account = account_of(session, user.id, create=True)
    if account.active == active:
        return _view(session, user)
    account.active = active
    if not active:
        end_all_sessions(session, user.id)
    session.flush()
    record_as(session, "user.reactivated" if active else "user.deactivated", actor=actor, subject_type="user", subject_id=user.id)
    return _view(session, user)


def ensure_first_admin(session: Session) -> tuple[str, str | None] | None:
    """On first start (no active admin yet) create one; returns (name, one-time password or None).

    The password is CRM_ADMIN_PASSWORD when set (None is returned: nothing to print), else a
    one-time password the caller prints once and the admin must change at first sign-in.
    """
    if _active_admins(session):
        return None
    configured = get_settings().admin_password
    if configured:
        check_strength(configured, name=FIRST_ADMIN_NAME)  # before anything is written
    system = Actor.system("first start")
    user = session.scalar(select(User).where(User.name == FIRST_ADMIN_NAME))
    if user is None:
        user = User(name=FIRST_ADMIN_NAME, role="admin")
        session.add(user)
        session.flush()
    user.role = "admin"
    password = configured or one_time_password()
    account = account_of(session, user.id, create=True)
    account.active = True
    account.password_hash = hash_password(password)
    account.password_set_at = clock.now()
    account.must_change_password = not configured
    session.flush()
    record_as(session, "user.admin_created", actor=system, subject_type="user", subject_id=user.id,
              password_from="CRM_ADMIN_PASSWORD" if configured else "one-time password")
    return user.name, None if configured else password


def set_demo_passwords(session: Session) -> int:
    """Demo mode only (called by `seed-demo`): every user without a password gets DEMO_PASSWORD."""
    digest = hash_password(DEMO_PASSWORD)
    count = 0
    for user in session.scalars(select(User)):
        account = account_of(session, user.id, create=True)
        if account.password_hash is None:
            account.password_hash = digest
            account.password_set_at = clock.now()
            count += 1
    if count:
        record_as(session, "user.demo_passwords", actor=Actor.system("seed-demo"), count=count)
    session.flush()
    return count


def _view(session: Session, user: User) -> UserView:
    account = session.get(UserAccount, user.id)
    return UserView(id=user.id, name=user.name, role=user.role, team=user.team, email=user.email,
                    active=account is None or account.active, has_password=bool(account and account.password_hash),
                    locked_until=account.locked_until if account else None,
                    last_sign_in_at=account.last_sign_in_at if account else None)
