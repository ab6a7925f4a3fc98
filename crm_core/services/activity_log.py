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
from crm_core.oversight import AuditView, DecidedItem, OutboxView, audit_words, wording
from crm_core.oversight.views import names_for, policy_thresholds, subject_name

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


class AuditRow(BaseModel):
    """One audit entry as a person reads it: no ids, no JSON."""

    at: datetime
    who: str
    what: str                 # "Approved", "Changed a record"
    record: str               # the record's name
    details: list[str]        # short sentences: "score: — → 82"
    decision_id: int | None   # for filtering and links; never shown as text


class ReadableAuditPage(BaseModel):
    rows: list[AuditRow]
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


def who(actor: str) -> str:
    """An audit actor as a person reads it: 'agent:follow_up' -> 'Follow-up agent'."""
    return audit_words.who(actor)


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


def readable_audit(session: Session, filters: AuditFilters, *, limit: int = 100, offset: int = 0) -> ReadableAuditPage:
    """The audit log newest first, each entry in plain words with what changed from what to what."""
    page = audit_log(session, filters, limit=limit, offset=offset)
    decision_ids = {e.decision_id for e in page.entries if e.decision_id is not None}
    decisions = {d.id: d for d in session.scalars(select(Decision).where(Decision.id.in_(decision_ids)))} if decision_ids else {}
    extra: dict[str, set[int]] = {}
    for e in page.entries:
        if e.subject_type and e.subject_id is not None:
            extra.setdefault(e.subject_type, set()).add(e.subject_id)
        for key in ("params",):
            params = e.details.get(key) if isinstance(e.details, dict) else None
            if isinstance(params, dict):
                for field, kind in (("contact_id", "contact"), ("deal_id", "deal"), ("meeting_id", "meeting"),
                                    ("owner_id", "user"), ("source_contact_id", "contact"), ("target_contact_id", "contact")):
                    if isinstance(params.get(field), int):
                        extra.setdefault(kind, set()).add(params[field])
                if params.get("entity") in ("contact", "account") and isinstance(params.get("entity_id"), int):
                    extra.setdefault(params["entity"], set()).add(params["entity_id"])
    names = names_for(session, decisions.values(), extra=extra)
    if extra.get("user"):
        names.users |= dict(session.execute(select(User.id, User.name).where(User.id.in_(extra["user"]))).all())
    thresholds = policy_thresholds(session)

    def headline(d: Decision | None) -> str | None:
        if d is None:
            return None
        if not d.actions:
            return f"A look at {subject_name(d, names)}"
        first = d.actions[0]
        more = f" (and {len(d.actions) - 1} more)" if len(d.actions) > 1 else ""
        return wording.headline(first.get("type", ""), first.get("params") or {}, names) + more

    rows = []
    for e in page.entries:
        d = decisions.get(e.decision_id) if e.decision_id is not None else None
        record = subject_name(d, names) if d is not None else (
            names.users.get(e.subject_id, "a user") if e.subject_type == "user"
            else "an import" if e.subject_type == "import"
            else names.record(e.subject_type, e.subject_id))
        rows.append(AuditRow(
            at=e.at, who=audit_words.who(e.actor), what=audit_words.event_label(e.event), record=record,
            details=audit_words.describe(e, names, headline(d), d.confidence if d else None, thresholds),
            decision_id=e.decision_id,
        ))
    return ReadableAuditPage(rows=rows, has_more=page.has_more)


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
    names = names_for(session, rows[:limit])
    out = [
        DecisionRow(
            id=d.id, created_at=d.created_at, agent=wording.agent_label(d.agent), subject=subject_name(d, names),
            status=d.status, actions="; ".join(wording.headline(a.get("type", ""), a.get("params") or {}, names)
                                               for a in (d.actions or [])) or "—",
            confidence=d.confidence, stakes=d.stakes, policy="; ".join(wording.why_waiting(d.policy_reason, d.confidence, {}))
            if d.policy_verdict == "queue" else "ran on its own", decided_by=d.decided_by,
            decided_at=d.decided_at, provider=wording.provider_line(d.provider, d.model, d.is_local), cost_usd=float(d.cost_usd or 0),
        )
        for d in rows[:limit]
    ]
    return DecisionPage(rows=out, has_more=len(rows) > limit)


def revertable(session: Session, *, agent: str | None = None, limit: int = 20) -> list[DecidedItem]:
    """Executed decisions, newest first: the ones a revert button applies to."""
    return oversight.decided_feed(session, agent=agent, status="executed", limit=limit)


def outbox(session: Session, *, status: str | None = None, kind: str | None = None, limit: int = 100) -> list[OutboxView]:
    return oversight.outbox_messages(session, status=status, kind=kind, limit=limit)
