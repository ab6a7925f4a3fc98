"""Inbound webhook sources: who may post events to the CRM without a user's token, and how they prove it."""
from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.auth.rights import require
from crm_core.errors import NotFound, UserError
from crm_core.models import AuditEntry, WebhookSource
from crm_core.webhooks.signing import SignatureError, verify

SourceKind = Literal["signed", "browser"]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
RIGHT = "manage_integrations"


class SourceView(BaseModel):
    id: int
    name: str
    kind: str
    active: bool
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None


class RejectedRequest(UserError):
    """A webhook request that failed its signature or names no active source."""


def require_admin(actor: Actor, doing: str) -> None:
    # Integrations can write events for any contact and hear every decision: an admin's call.
    require(actor, RIGHT, doing=doing)


def _view(source: WebhookSource) -> SourceView:
    return SourceView(id=source.id, name=source.name, kind=source.kind, active=source.active,
                      created_at=source.created_at, created_by=source.created_by, last_used_at=source.last_used_at)


def create_source(session: Session, name: str, *, kind: SourceKind = "signed", actor: Actor) -> tuple[SourceView, str]:
    """A new source and its secret (for a browser source: its public site key). Shown once."""
    require_admin(actor, "add a webhook source")
    name = (name or "").strip().lower()
    if not _NAME.match(name):
        raise UserError("source name: use 1 to 100 lower-case letters, digits, '-' or '_' (e.g. 'website' or 'typeform')")
    if kind not in ("signed", "browser"):
        raise UserError("source kind must be 'signed' or 'browser'")
    if session.scalar(select(WebhookSource.id).where(WebhookSource.name == name)) is not None:
        raise UserError(f"a webhook source named {name!r} already exists")
    secret = ("site_" if kind == "browser" else "whsec_") + secrets.token_urlsafe(32)
    source = WebhookSource(name=name, kind=kind, secret=secret, active=True, created_at=clock.now(), created_by=actor.audit_name)
    session.add(source)
    session.flush()
    session.add(AuditEntry(at=clock.now(), actor=actor.audit_name, event="webhook.source_created",
                           details={"source": name, "kind": kind}))
    return _view(source), secret


def deactivate_source(session: Session, name: str, *, actor: Actor) -> SourceView:
    require_admin(actor, "turn off a webhook source")
    source = session.scalar(select(WebhookSource).where(WebhookSource.name == name))
    if source is None:
        raise NotFound(f"no webhook source named {name!r}")
    source.active = False
    session.add(AuditEntry(at=clock.now(), actor=actor.audit_name, event="webhook.source_deactivated", details={"source": name}))
    return _view(source)


def list_sources(session: Session) -> list[SourceView]:
    return [_view(s) for s in session.scalars(select(WebhookSource).order_by(WebhookSource.name))]


def _active(session: Session, name: str, kind: SourceKind) -> WebhookSource:
    source = session.scalar(select(WebhookSource).where(WebhookSource.name == name))
    # One message for unknown, inactive and wrong-kind sources: the caller learns nothing about which exist.
    if source is None or not source.active or source.kind != kind:
        raise RejectedRequest(f"no active {kind} webhook source named {name[:100]!r}")
    return source


def verify_signed(session: Session, name: str, *, timestamp: str | None, signature: str | None, body: bytes,
                  tolerance_s: int) -> WebhookSource:
    source = _active(session, name, "signed")
    try:
        verify(source.secret, timestamp=timestamp, provided=signature, body=body, tolerance_s=tolerance_s)
    except SignatureError as exc:
        raise RejectedRequest(str(exc)) from None
    _touch(source)
    return source


def verify_browser(session: Session, name: str, *, site_key: str | None) -> WebhookSource:
    source = _active(session, name, "browser")
    if not site_key or not secrets.compare_digest(site_key.encode(), source.secret.encode()):
        raise RejectedRequest("the site key does not match this source")
    _touch(source)
    return source


def _touch(source: WebhookSource) -> None:
    now = clock.now()
    if source.last_used_at is None or (now - source.last_used_at).total_seconds() > 60:
        source.last_used_at = now
