"""When the scheduler audits the book: after every import, and at least once a day.

`audit_due` is what the planner asks (cheap: two indexed reads); `run_scheduled_audit` is the
job: audit, keep the result, queue the fixes it supports (each waits for a person).
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.db import unit_of_work
from crm_core.models import AuditEntry, QualityAudit
from crm_core.quality.audit import run_audit
from crm_core.quality.proposals import propose_fixes

AUDIT_JOB = "data_audit"
DAILY = timedelta(days=1)
IMPORT_EVENT = "import.applied"


def _last_import(session: Session, since_id: int = 0) -> AuditEntry | None:
    return session.scalar(select(AuditEntry).where(AuditEntry.event == IMPORT_EVENT, AuditEntry.id > since_id)
                          .order_by(AuditEntry.id.desc()).limit(1))


def audit_due(session: Session) -> str | None:
    """"import" when an import landed since the last audit, "daily" when the last one is a day old, else None."""
    last = session.scalar(select(QualityAudit).order_by(QualityAudit.id.desc()).limit(1))
    if last is None:
        return "import" if _last_import(session) is not None else "daily"
    seen = int((last.report or {}).get("audit_log_position") or 0)
    newer = _last_import(session, seen)
    if newer is not None and newer.at >= last.ran_at:
        return "import"
    return "daily" if clock.now() - last.ran_at >= DAILY else None


def run_scheduled_audit(trigger: str | None = None) -> dict[str, Any]:
    with unit_of_work() as session:
        trigger = trigger or audit_due(session) or "daily"
        imported = _last_import(session)
        report = run_audit(session, trigger=trigger,
                           import_ref=str((imported.details or {}).get("file"))[:300] if trigger == "import" and imported else None)
        row = session.get(QualityAudit, report.audit_id)
        # Remember how far the audit log was read, so the same import does not trigger twice.
        row.report = {**row.report, "audit_log_position": imported.id if imported else 0}
        ids = propose_fixes(session, report)
    return {"audit_id": report.audit_id, "book_score": report.book_score, "trigger": trigger, "proposed": len(ids)}
