"""Who a command-line call acts as: `--as NAME`, else the owner of CRM_TOKEN, else CRM_USER.

The name must be an active user; anything else is refused. The CLI trusts the login shell that
can read the store (whoever can run it can open the database), so `--as` needs no password, but it
can only name a real user, and that user's rights decide; scripts should use an API token.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from crm_core.auth.accounts import active_user_named, actor_for, find_user
from crm_core.auth.actor import Actor
from crm_core.auth.tokens import verify_token
from crm_core.errors import PermissionDenied
from crm_core.settings import get_settings


def cli_actor(session: Session, as_user: str | None, *, doing: str) -> Actor:
    settings = get_settings()
    if as_user:
        return _named(session, as_user, doing=doing, source="--as")
    if settings.token:
        actor = verify_token(session, settings.token)
        if actor is None:
            raise PermissionDenied(f"{doing}: CRM_TOKEN is not a valid token (unknown, revoked, or its user is deactivated)",
                                   right="signed_in")
        return actor
    if settings.user:
        return _named(session, settings.user, doing=doing, source="CRM_USER")
    raise PermissionDenied(f"{doing}: say who you are with --as NAME (an active user), CRM_USER or an API token in CRM_TOKEN",
                           right="signed_in")


def _named(session: Session, name: str, *, doing: str, source: str) -> Actor:
    user = active_user_named(session, name)
    if user is None:
        known = find_user(session, name)
        why = "is deactivated" if known is not None else "is not a user of this CRM (`python -m crm_core users list`)"
        raise PermissionDenied(f"{doing}: {source} {name!r} {why}", right="signed_in")
    return actor_for(user, "cli")
