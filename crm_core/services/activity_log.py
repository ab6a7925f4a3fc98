"""Activity and audit: every decision and action, filterable; revertable decisions; the outbox.

The audit log itself is read through `crm_core.oversight.audit_entries`; this module adds the
decision list (one row per decision, for the table), the list of names to filter by, and paging.
"""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.base import AGENT_NAMES
from crm_core import clock, oversight
from crm_core.models import Decision, User
from crm_core.oversight import AuditView, DecidedItem, OutboxView

SUBJECT_TYPES = ("contact", "deal", "meeting", "account", "pipeline")
SYSTEM_ACTORS = ("policy", "system", "scheduler")


class AuditFilters(BaseModel):
    agent: str | None = None
    subject_type: str | None = None
    subject_id: int | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class AuditPage(BaseModel):
    entries: list[AuditView]
    has_more: bool


class DecisionRow(BaseModel):
    id: int
    created_at: datetime
    agent: str
    subject: str
    status: str
    actions: str
    confidence: float | None
    stakes: str | None
    policy: str | None
    decided_by: str | None
    decided_at: datetime | None
    provider: str | None
    cost_usd: float


class DecisionPage(BaseModel):
    rows: list[DecisionRow]
    has_more: bool


def actor_names(session: Session) -> list[str]:
    """Everyone who can appear in the log: users, agents, and the system actors."""
    users = [n for (n,) in session.execute(select(User.name).order_by(User.name))]
    return users + [f"agent:{a}" for a in AGENT_NAMES] + list(SYSTEM_ACTORS)


def audit_log(session: Session, filters: AuditFilters, *, limit: int = 100, offset: int = 0) -> AuditPage:
    """Audit entries newest first; one extra row is read to know whether another page exists."""
    entries = oversight.audit_entries(
        session, agent=filters.agent, subject_type=filters.subject_type, subject_id=filters.subject_id,
        actor=filters.actor, since=filters.since, until=filters.until, limit=limit + 1, offset=offset,
    )
    return AuditPage(entries=entries[:limit], has_more=len(entries) > limit)


def decision_log(session: Session, filters: AuditFilters, *, limit: int = 100, offset: int = 0) -> DecisionPage:
    """Decisions newest first under the same filters (the actor is who decided them)."""
    q = select(Decision)
    if filters.agent:
        q = q.where(Decision.agent == filters.agent)
    if filters.subject_type:
        q = q.where(Decision.subject_type == filters.subject_type)
    if filters.subject_id is not None:
        q = q.where(Decision.subject_id == filters.subject_id)
    if filters.actor:
        q = q.where(Decision.decided_by == filters.actor)
    if filters.since:
        q = q.where(Decision.created_at >= clock.to_naive_utc(filters.since))
    if filters.until:
        q = q.where(Decision.created_at < clock.to_naive_utc(filters.until))
    rows = list(session.scalars(q.order_by(Decision.created_at.desc(), Decision.id.desc()).limit(limit + 1).offset(offset)))
    out = [
        DecisionRow(
            id=d.id, created_at=d.created_at, agent=d.agent,
            subject=d.subject_label or (f"{d.subject_type} {d.subject_id}" if d.subject_id is not None else d.subject_type),
            status=d.status, actions=", ".join(a.get("type", "?") for a in (d.actions or [])) or "—",
            confidence=d.confidence, stakes=d.stakes, policy=d.policy_reason, decided_by=d.decided_by,
            decided_at=d.decided_at, provider=d.provider, cost_usd=float(d.cost_usd or 0),
        )
        for d in rows[:limit]
    ]
    return DecisionPage(rows=out, has_more=len(rows) > limit)


def revertable(session: Session, *, agent: str | None = None, limit: int = 20) -> list[DecidedItem]:
    """Executed decisions, newest first: the ones a revert button applies to."""
    return oversight.decided_feed(session, agent=agent, status="executed", limit=limit)


def outbox(session: Session, *, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[OutboxView]:
    return oversight.outbox_messages(session, status=status, kind=kind, limit=limit)
