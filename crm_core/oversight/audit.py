"""The append-only audit log: one writer (`record`) and one reader (`audit_entries`)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.auth.actor import Actor
from crm_core.models import AuditEntry, Decision
from crm_core.oversight.jsonable import jsonable
from crm_core.oversight.schemas import AuditView


def record(
    session: Session,
    event: str,
    *,
    actor: str,
    decision: Decision | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    **details: Any,
) -> AuditEntry:
    """Append one entry. A decision's subject is copied so the log can be filtered by record."""
    entry = AuditEntry(
        at=clock.now(),
        actor=actor,
        event=event,
        decision_id=decision.id if decision is not None else None,
        subject_type=subject_type or (decision.subject_type if decision is not None else None),
        subject_id=subject_id if subject_id is not None else (decision.subject_id if decision is not None else None),
        details=jsonable(details),
    )
    session.add(entry)
    return entry


def audit_entries(
    session: Session,
    *,
    agent: str | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    actor: str | None = None,
    event: str | None = None,
    decision_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[AuditView]:
    """Newest first. `agent` keeps entries about that agent's decisions and its own actions."""
    q = select(AuditEntry)
    if agent is not None:
        agent_decisions = select(Decision.id).where(Decision.agent == agent)
        q = q.where((AuditEntry.decision_id.in_(agent_decisions)) | (AuditEntry.actor == f"agent:{agent}"))
    if subject_type is not None:
        q = q.where(AuditEntry.subject_type == subject_type)
    if subject_id is not None:
        q = q.where(AuditEntry.subject_id == subject_id)
    if actor is not None:
        # A person's entries read "Morgan Lee (password)": the name alone finds them however they signed in.
        q = q.where((AuditEntry.actor == actor) | AuditEntry.actor.startswith(f"{actor} (", autoescape=True))
    if event is not None:
        q = q.where(AuditEntry.event == event)
    if decision_id is not None:
        q = q.where(AuditEntry.decision_id == decision_id)
    if since is not None:
        q = q.where(AuditEntry.at >= clock.to_naive_utc(since))
    if until is not None:
        q = q.where(AuditEntry.at < clock.to_naive_utc(until))
    q = q.order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit).offset(offset)
    return [
        AuditView(
            id=e.id, at=e.at, actor=e.actor, event=e.event, decision_id=e.decision_id,
            subject_type=e.subject_type, subject_id=e.subject_id, details=e.details or {},
        )
        for e in session.scalars(q)
    ]


def record_as(session: Session, event: str, *, actor: Actor, decision: Decision | None = None,
              subject_type: str | None = None, subject_id: int | None = None, **details: Any) -> AuditEntry:
    """An entry on behalf of a person: actor column "Morgan Lee (password)"; details keep via and user_id."""
    return record(session, event, actor=actor.audit_name, decision=decision, subject_type=subject_type,
                  subject_id=subject_id, via=actor.via, user_id=actor.user_id, **details)
