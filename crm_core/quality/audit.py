"""The data-quality audit of the whole book: profile every field, find duplicates, score, keep history.

Runs after an import, daily from the scheduler, and on demand (`python -m crm_core data audit`).
Each run is stored (`quality_audits`, one `quality_field_scores` row per field) so the Data
health page can chart the trend and the learners can read which values were placeholders.
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import clock
from crm_core.models import QualityAudit, QualityFieldScore
from crm_core.quality.duplicates import duplicate_groups
from crm_core.quality.fields import read_fields
from crm_core.quality.profile import profile_field
from crm_core.quality.schemas import AuditReport, TrendPoint

TRIGGERS = ("import", "daily", "manual")
# Share of the book's records that are extra copies at which the book score loses half.
_DUPLICATE_WEIGHT = 1.0


def audit_book(session: Session, *, trigger: str = "manual", import_ref: str | None = None) -> AuditReport:
    """Profile the book as it is now; stores nothing (see `run_audit`)."""
    now = clock.now()
    fields, counts = read_fields(session)
    reports = [profile_field(fv, counts[fv.table], now) for fv in fields]
    duplicates = duplicate_groups(session)
    total = sum(counts.values())
    counted = [r.score for r in reports if r.counted_in_book]
    mean = sum(counted) / len(counted) if counted else 100.0
    extra_copies = sum(len(g.record_ids) - 1 for g in duplicates)
    penalty = min(0.5, _DUPLICATE_WEIGHT * extra_copies / total) if total else 0.0
    return AuditReport(ran_at=now, trigger=trigger, import_ref=import_ref, records=total,
                       book_score=round(mean * (1.0 - penalty), 1), fields=reports, duplicates=duplicates)


def store_audit(session: Session, report: AuditReport) -> AuditReport:
    """Keep the audit (trimmed record lists) and its per-field scores; returns the report with its id."""
    row = QualityAudit(ran_at=report.ran_at, trigger=report.trigger, import_ref=report.import_ref,
                       book_score=report.book_score, records=report.records,
                       report=report.trimmed().model_dump(mode="json"))
    session.add(row)
    session.flush()
    session.add_all(QualityFieldScore(audit_id=row.id, field_key=f.field_key, score=f.score, fill_rate=f.fill_rate,
                                      distinct_values=f.distinct_values, placeholders=list(f.placeholders))
                    for f in report.fields)
    session.flush()
    report.audit_id = row.id
    return report


def run_audit(session: Session, *, trigger: str = "manual", import_ref: str | None = None) -> AuditReport:
    """Audit the book and keep the result; the returned report holds every affected record id."""
    if trigger not in TRIGGERS:
        raise ValueError(f"audit trigger {trigger!r} is not one of {', '.join(TRIGGERS)}")
    return store_audit(session, audit_book(session, trigger=trigger, import_ref=import_ref))


def latest_audit(session: Session) -> AuditReport | None:
    row = session.scalar(select(QualityAudit).order_by(QualityAudit.id.desc()).limit(1))
    if row is None:
        return None
    report = AuditReport.model_validate(row.report)
    report.audit_id = row.id
    return report


def trend(session: Session, limit: int = 90) -> list[TrendPoint]:
    rows = session.execute(select(QualityAudit.id, QualityAudit.ran_at, QualityAudit.trigger, QualityAudit.book_score)
                           .order_by(QualityAudit.id.desc()).limit(limit)).all()
    return [TrendPoint(audit_id=i, ran_at=at, trigger=t, book_score=s) for i, at, t, s in reversed(rows)]
