"""Data health for the dashboard, the CLI and the Import page: audit, trend, fixes waiting.

Pages call these and only lay out what they return. Rights: anyone signed in may see the book's
health and run an audit (it reads, and keeps a score); proposing fixes puts bulk changes in the
queue, which needs a manager's view of the whole book (`view_all`) or the scheduler.
"""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.auth.actor import Actor
from crm_core.auth.rights import require
from crm_core.models import Decision
from crm_core.oversight.audit import record_as
from crm_core.quality.audit import latest_audit, run_audit, trend
from crm_core.quality.proposals import PROPOSER, propose_fixes
from crm_core.quality.schemas import AuditReport, FieldReport, TrendPoint

AUDITED_AFTER_IMPORT = "quality.audited_after_import"  # the audit log's event: who imported, the book's score after
_TABLE_OF = {"contact": "contacts", "contacts": "contacts", "account": "accounts", "accounts": "accounts",
             "deal": "deals", "deals": "deals"}


class WaitingFix(BaseModel):
    decision_id: int
    field: str
    summary: str
    records: int
    created_at: datetime


class DataHealth(BaseModel):
    audit: AuditReport | None
    worst_fields: list[FieldReport] = Field(default_factory=list)
    trend: list[TrendPoint] = Field(default_factory=list)
    waiting_fixes: list[WaitingFix] = Field(default_factory=list)
    waiting_total: int = 0


class ImportAudit(BaseModel):
    """What the Import page shows under a finished import: the book's score and the imported table's fields."""

    audit_id: int | None
    book_score: float
    previous_book_score: float | None
    table: str | None
    fields: list[FieldReport]
    problems: list[str]            # one plain sentence per finding in the imported table, worst first
    duplicate_groups: int


def waiting_fixes(session: Session, limit: int = 20) -> tuple[list[WaitingFix], int]:
    base = select(Decision).where(Decision.agent == PROPOSER, Decision.status == "queued")
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(base.order_by(Decision.id.desc()).limit(limit))
    out = []
    for d in rows:
        action = (d.actions or [{}])[0]
        params = action.get("params") or {}
        records = len(params.get("record_ids") or []) or len(params.get("manual_record_ids") or [])
        out.append(WaitingFix(decision_id=d.id, field=d.subject_label or "", summary=d.reasoning or "",
                              records=records, created_at=d.created_at))
    return out, total


def data_health(session: Session, *, worst: int = 8) -> DataHealth:
    report = latest_audit(session)
    fixes, total = waiting_fixes(session)
    return DataHealth(audit=report, worst_fields=report.worst_fields(worst) if report else [],
                      trend=trend(session), waiting_fixes=fixes, waiting_total=total)


def audit_now(session: Session, actor: Actor, *, trigger: str = "manual", propose: bool = False) -> tuple[AuditReport, list[int]]:
    """Audit the book now and keep the result; with `propose`, queue the fixes it supports."""
    if propose and actor.role != "system":
        require(actor, "view_all", doing="propose data fixes for the whole book")
    report = run_audit(session, trigger=trigger)
    ids = propose_fixes(session, report) if propose else []
    return report, ids


def audit_for_import(session: Session, import_ref: str | None = None, entity: str | None = None, *,
                     actor: Actor) -> ImportAudit:
    """Audit the book right after an import and report on the table it filled.

    `import_ref`: a name for the import kept with the audit (e.g. "contacts from leads.csv").
    `entity`: "contacts", "accounts" or "deals" (or the singular); None reports every table.
    `actor`: who imported; the audit log says they checked the book after their import.
    Runs in the caller's transaction; call it after the import's rows are flushed.
    """
    table = _TABLE_OF.get(entity or "") if entity else None
    previous = latest_audit(session)
    report = run_audit(session, trigger="import", import_ref=(import_ref or entity or "import")[:300])
    record_as(session, AUDITED_AFTER_IMPORT, actor=actor, quality_audit_id=report.audit_id, import_ref=report.import_ref,
              book_score=report.book_score, previous_book_score=previous.book_score if previous else None)
    fields = [f for f in report.fields if table is None or f.field_key.startswith(f"{table}.")]
    fields = [f for f in fields if f.filled > 0]
    findings = sorted((x for f in fields for x in f.findings), key=lambda x: -x.count)
    groups = [g for g in report.duplicates if table is None or g.field_key.startswith(f"{table}.")]
    return ImportAudit(audit_id=report.audit_id, book_score=report.book_score,
                       previous_book_score=previous.book_score if previous else None, table=table,
                       fields=sorted(fields, key=lambda f: f.score), problems=[f"{_field_name(x.field_key)}: {x.message}" for x in findings],
                       duplicate_groups=len(groups))


def _field_name(field_key: str) -> str:
    table, _, field = field_key.partition(".")
    return f"{table.capitalize()} {field.removeprefix('attributes.').replace('_', ' ')}"
