"""Audit entries written on behalf of an actor: the name, how they signed in and their user id."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm_core.auth.actor import Actor
from crm_core.models import AuditEntry, Decision
from crm_core.oversight.audit import record


def record_as(session: Session, event: str, *, actor: Actor, decision: Decision | None = None,
              subject_type: str | None = None, subject_id: int | None = None, **details: Any) -> AuditEntry:
    """`actor` column: "Morgan Lee (password)"; details keep `via` and `user_id` for filtering."""
    return record(session, event, actor=actor.audit_name, decision=decision, subject_type=subject_type,
                  subject_id=subject_id, via=actor.via, user_id=actor.user_id, **details)
