"""Test helpers for who acts: ready-made actors, users with passwords, a signed-in AppTest session."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.auth import Actor
from crm_core.auth.passwords import hash_password
from crm_core.auth.sessions import SESSION_KEY, start_session
from crm_core.db import unit_of_work
from crm_core.models import User, UserAccount

# For service tests that do not care who owns what: a manager and an admin with no user row.
MANAGER = Actor(user_id=None, name="Morgan Manager", role="manager", via="cli")
ADMIN = Actor(user_id=None, name="Ada Admin", role="admin", via="cli")

_HASHES: dict[str, str] = {}  # argon2 is slow on purpose; tests reuse a password's hash


def add_user(session: Session, name: str, role: str = "rep", *, password: str | None = None,
             email: str | None = None, active: bool = True) -> User:
    user = User(name=name, role=role, email=email)
    session.add(user)
    session.flush()
    if password is not None or not active:
        if password is not None and password not in _HASHES:
            _HASHES[password] = hash_password(password)
        session.add(UserAccount(user_id=user.id, active=active, password_hash=_HASHES.get(password) if password else None,
                                must_change_password=False, failed_sign_ins=0))
        session.flush()
    return user


def actor_of(user: User, via: str = "password") -> Actor:
    return Actor(user_id=user.id, name=user.name, role=user.role, via=via)


def sign_in(at, name: str, *, url: str | None = None) -> Actor:
    """Sign an AppTest session in as the user called `name` (a browser session row, as after a sign-in)."""
    with unit_of_work(url) as s:
        user = s.scalar(select(User).where(User.name == name))
        assert user is not None, f"no user called {name!r} in the store"
        raw = start_session(s, user.id, via="password")
        actor = actor_of(user)
    at.session_state[SESSION_KEY] = raw
    return actor
