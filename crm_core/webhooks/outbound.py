"""Outbound webhooks: what the agents decided, told to subscribed URLs, signed, retried, never doubled.

Events come from the append-only audit log, which every decision and action already writes in
its own transaction, so a webhook is told only what committed:

    decision.queued     a decision waits for a human (audit `decision.queued`)
    decision.executed   a decision's actions ran (audit `decision.executed`)
    decision.reverted   a human undid a decision (audit `decision.reverted`)
    deal.risk_changed   a deal's green/amber/red flag changed (`set_deal_risk` executed or reverted)

The scheduler follows the audit log (`orchestration/scheduler/webhook_jobs.py`) and turns each entry into
one delivery row per active subscription. The row's unique (subscription, event id) is the
"never twice" guarantee: re-reading the log after a crash finds the row and adds nothing. A
delivery is claimed by a conditional UPDATE with a lease before the POST, so two workers never
post it together; a failed POST is retried with exponential backoff (30 s, 1, 2, 4 ... minutes,
at most an hour apart) up to CRM_WEBHOOK_MAX_ATTEMPTS, then marked failed. A worker killed
between the POST and recording it re-posts after the lease: receivers dedupe on X-CRM-Event-Id.
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.db import session_factory
from crm_core.errors import NotFound, UserError
from crm_core.models import ActionExecution, AuditEntry, Deal, Decision, WebhookDelivery, WebhookSubscription
from crm_core.settings import Settings, get_settings
from crm_core.webhooks.signing import EVENT_HEADER, EVENT_ID_HEADER, signed_headers
from crm_core.webhooks.sources import require_admin

EVENT_TYPES: tuple[str, ...] = ("decision.queued", "decision.executed", "decision.reverted", "deal.risk_changed")
_DECISION_EVENTS = {"decision.queued", "decision.executed", "decision.reverted"}
RISK_ACTION = "set_deal_risk"
LEASE = timedelta(minutes=2)
FIRST_RETRY_S = 30
MAX_RETRY_S = 3600
ERROR_CHARS = 500


class SubscriptionView(BaseModel):
    id: int
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime
    created_by: str | None


class DeliveryView(BaseModel):
    """One outbound webhook for the Activity page: where, what, how it went."""

    id: int
    subscription_id: int
    url: str
    event_type: str
    event_id: str
    status: str
    attempts: int
    created_at: datetime
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    response_status: int | None
    last_error: str | None
    summary: str


# ---- subscriptions ----------------------------------------------------------------------

def _sub_view(sub: WebhookSubscription) -> SubscriptionView:
    return SubscriptionView(id=sub.id, url=sub.url, events=list(sub.events or []), description=sub.description,
                            active=sub.active, created_at=sub.created_at, created_by=sub.created_by)


def create_subscription(session: Session, url: str, events: Iterable[str], *, actor: Actor,
                        description: str | None = None) -> tuple[SubscriptionView, str]:
    """A new subscription and its signing secret (shown once)."""
    require_admin(actor, "add a webhook subscription")
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise UserError(f"subscription url: {url[:100]!r} is not an http(s) URL")
    wanted = list(dict.fromkeys(e.strip() for e in events if e and e.strip()))
    unknown = [e for e in wanted if e not in EVENT_TYPES]
    if not wanted or unknown:
        raise UserError(f"subscription events: {', '.join(unknown) or 'none given'}; choose from {', '.join(EVENT_TYPES)}")
    secret = "whsec_" + secrets.token_urlsafe(32)
    sub = WebhookSubscription(url=url, events=wanted, secret=secret, description=(description or None),
                              active=True, created_at=clock.now(), created_by=actor.audit_name)
    session.add(sub)
    session.flush()
    session.add(AuditEntry(at=clock.now(), actor=actor.audit_name, event="webhook.subscribed",
                           details={"subscription_id": sub.id, "url": url, "events": wanted}))
    return _sub_view(sub), secret


def deactivate_subscription(session: Session, subscription_id: int, *, actor: Actor) -> SubscriptionView:
    require_admin(actor, "turn off a webhook subscription")
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None:
        raise NotFound(f"webhook subscription {subscription_id} not found")
    sub.active = False
    session.add(AuditEntry(at=clock.now(), actor=actor.audit_name, event="webhook.unsubscribed",
                           details={"subscription_id": sub.id, "url": sub.url}))
    return _sub_view(sub)


def list_subscriptions(session: Session) -> list[SubscriptionView]:
    return [_sub_view(s) for s in session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))]


# ---- audit log -> deliveries --------------------------------------------------------------

def _decision_data(decision: Decision | None) -> dict[str, Any]:
    if decision is None:
        return {}
    return {
        "id": decision.id, "agent": decision.agent, "status": decision.status,
        "subject": {"type": decision.subject_type, "id": decision.subject_id, "label": decision.subject_label},
        "confidence": decision.confidence, "stakes": decision.stakes,
        "actions": [{"type": a.get("type"), "reason": a.get("reason")} for a in (decision.actions or []) if isinstance(a, dict)],
        "created_at": decision.created_at.isoformat() if decision.created_at else None,
        "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
    }


def event_of(session: Session, entry: AuditEntry) -> tuple[str, dict[str, Any]] | None:
    """The webhook event an audit entry stands for, with its data; None for entries nobody subscribes to."""
    details = entry.details or {}
    if entry.event in _DECISION_EVENTS:
        decision = session.get(Decision, entry.decision_id) if entry.decision_id else None
        return entry.event, {"decision": _decision_data(decision), "by": entry.actor}
    if entry.event in ("action.executed", "action.reverted") and details.get("action_type") == RISK_ACTION:
        params = details.get("params") or {}
        deal_id = params.get("deal_id") if entry.event == "action.executed" else entry.subject_id
        deal = session.get(Deal, deal_id) if deal_id else None
        if entry.event == "action.executed":
            before = ((details.get("before_image") or {}).get("deal") or {}).get("risk")
            after = params.get("risk")
            if before == after:
                return None  # re-confirmed, not changed
        else:
            executed = session.scalar(select(ActionExecution).where(ActionExecution.decision_id == entry.decision_id,
                                                                    ActionExecution.position == details.get("position")))
            before = (executed.params or {}).get("risk") if executed is not None else None
            after = deal.risk if deal is not None else None
        return "deal.risk_changed", {
            "deal": {"id": deal_id, "name": deal.name if deal else None, "external_id": deal.external_id if deal else None,
                     "risk": after, "previous_risk": before, "reason": deal.risk_reason if deal else None,
                     "recommended_action": deal.risk_action if deal else None},
            "decision_id": entry.decision_id, "reverted": entry.event == "action.reverted", "by": entry.actor,
        }
    return None


def enqueue_from_audit(session: Session, audit_ids: Iterable[int]) -> int:
    """One delivery per active subscription for each of these audit entries that is a webhook event."""
    ids = sorted(set(audit_ids))
    if not ids:
        return 0
    subs = list(session.scalars(select(WebhookSubscription).where(WebhookSubscription.active.is_(True))))
    if not subs:
        return 0
    created = 0
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.id.in_(ids)).order_by(AuditEntry.id)):
        found = event_of(session, entry)
        if found is None:
            continue
        event_type, data = found
        event_id = f"audit:{entry.id}"
        payload = {"id": event_id, "type": event_type, "occurred_at": entry.at.isoformat() + "Z", "data": data}
        for sub in subs:
            if event_type not in (sub.events or []):
                continue
            if session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == sub.id,
                                                               WebhookDelivery.event_id == event_id)) is not None:
                continue
            try:
                with session.begin_nested():
                    session.add(WebhookDelivery(subscription_id=sub.id, event_id=event_id, event_type=event_type,
                                                payload=payload, status="pending", attempts=0,
                                                next_attempt_at=clock.now(), created_at=clock.now()))
                    session.flush()
                created += 1
            except IntegrityError:
                continue  # another follower enqueued it first: still once
    return created


# ---- delivery -------------------------------------------------------------------------------

def backoff_seconds(attempts: int) -> int:
    return min(FIRST_RETRY_S * 2 ** max(attempts - 1, 0), MAX_RETRY_S)


def _claim(session: Session, delivery_id: int, now: datetime) -> bool:
    return bool(session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id,
               or_(WebhookDelivery.status == "pending",
                   (WebhookDelivery.status == "sending") & (WebhookDelivery.lease_expires_at < now)),
               WebhookDelivery.next_attempt_at <= now)
        .values(status="sending", lease_expires_at=now + LEASE, attempts=WebhookDelivery.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount)


def deliver_due(sessions: sessionmaker[Session] | None = None, settings: Settings | None = None, *, limit: int = 100,
                client: httpx.Client | None = None) -> dict[str, int]:
    """Post the deliveries whose time has come, each claimed in its own transaction. Call outside a transaction.

    `sessions`, `settings` and `client` default to the configured store, settings and a fresh
    client; pass an `httpx.Client` with a mock transport to deliver without a socket.
    """
    sessions = sessions or session_factory()
    settings = settings or get_settings()
    now = clock.now()
    with sessions.begin() as session:
        ids = list(session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.next_attempt_at <= now,
                   or_(WebhookDelivery.status == "pending",
                       (WebhookDelivery.status == "sending") & (WebhookDelivery.lease_expires_at < now)))
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)))
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    if not ids:
        return counts
    own_client = client is None
    http = client or httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
    try:
        for delivery_id in ids:
            outcome = _deliver_one(sessions, settings, http, delivery_id)
            if outcome:
                counts[outcome] += 1
    finally:
        if own_client:
            http.close()
    return counts


def _deliver_one(sessions: sessionmaker[Session], settings: Settings, http: httpx.Client, delivery_id: int) -> str | None:
    now = clock.now()
    with sessions.begin() as session:
        if not _claim(session, delivery_id, now):
            return None
        delivery = session.get(WebhookDelivery, delivery_id)
        sub = session.get(WebhookSubscription, delivery.subscription_id)
        attempts, payload, event_type, event_id = delivery.attempts, delivery.payload, delivery.event_type, delivery.event_id
        target, secret, active = sub.url, sub.secret, sub.active
    status_code: int | None = None
    error: str | None = None
    if not active:
        error = "the subscription was turned off"
    else:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "agentic-crm-webhooks",
                   EVENT_HEADER: event_type, EVENT_ID_HEADER: event_id, **signed_headers(secret, body)}
        try:
            response = http.post(target, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"the receiver answered HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"could not reach the receiver: {type(exc).__name__}: {exc}"[:ERROR_CHARS]
    done = clock.now()
    with sessions.begin() as session:
        values: dict[str, Any] = {"response_status": status_code, "lease_expires_at": None}
        if error is None:
            values |= {"status": "delivered", "delivered_at": done, "last_error": None}
            outcome = "delivered"
        elif not active or attempts >= settings.webhook_max_attempts:
            values |= {"status": "failed", "last_error": error}
            outcome = "failed"
            session.add(AuditEntry(at=done, actor="system", event="webhook.failed",
                                   details={"delivery_id": delivery_id, "event_id": event_id, "url": target,
                                            "attempts": attempts, "error": error}))
        else:
            values |= {"status": "pending", "last_error": error,
                       "next_attempt_at": done + timedelta(seconds=backoff_seconds(attempts))}
            outcome = "retrying"
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "sending")
                        .values(**values).execution_options(synchronize_session=False))
    return outcome


# ---- what the Activity page shows -------------------------------------------------------

def _summary(payload: dict[str, Any]) -> str:
    data = payload.get("data") or {}
    if "deal" in data:
        deal = data["deal"] or {}
        return f"{deal.get('name') or 'a deal'}: flag {deal.get('previous_risk') or 'none'} to {deal.get('risk') or 'none'}"
    decision = data.get("decision") or {}
    subject = (decision.get("subject") or {}).get("label") or "a record"
    return f"{decision.get('agent') or 'agent'} decision on {subject}"


def deliveries(session: Session, *, status: str | None = None, limit: int = 100) -> list[DeliveryView]:
    """Outbound webhook deliveries, newest first (service for the Activity and audit page)."""
    q = (select(WebhookDelivery, WebhookSubscription.url)
         .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
         .order_by(WebhookDelivery.id.desc()).limit(limit))
    if status:
        q = q.where(WebhookDelivery.status == status)
    return [DeliveryView(id=d.id, subscription_id=d.subscription_id, url=u, event_type=d.event_type, event_id=d.event_id,
                         status=d.status, attempts=d.attempts, created_at=d.created_at, delivered_at=d.delivered_at,
                         next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                         response_status=d.response_status, last_error=d.last_error, summary=_summary(d.payload or {}))
            for d, u in session.execute(q)]


def delivery_counts(session: Session) -> dict[str, int]:
    return {status: int(n) for status, n in session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status))}
