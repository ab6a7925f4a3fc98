"""Data-quality audits: one row per audit of the book, one row per field it looked at.

The field rows keep what the agents and learners need later (which values the audit took for
placeholders) and what the Data health page charts (score per field and for the book over time).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import clock
from crm_core.models.base import Base


class QualityAudit(Base):
    __tablename__ = "quality_audits"
    __table_args__ = (Index("ix_quality_audits_ran_at", "ran_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(default=clock.now)
    # What started it: "import", "daily", "manual".
    trigger: Mapped[str] = mapped_column(String(20))
    # The import it followed (entity and file name), when trigger is "import".
    import_ref: Mapped[str | None] = mapped_column(String(300))
    book_score: Mapped[float]
    records: Mapped[int]          # contacts + accounts + deals looked at
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the full audit, as shown and as --json prints


class QualityFieldScore(Base):
    __tablename__ = "quality_field_scores"
    __table_args__ = (Index("ix_quality_field_scores_audit", "audit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("quality_audits.id", ondelete="CASCADE"))
    # "contacts.title", "accounts.country", "contacts.attributes.lead_type"
    field_key: Mapped[str] = mapped_column(String(300))
    score: Mapped[float]
    fill_rate: Mapped[float]
    distinct_values: Mapped[int]
    # Stored values the audit took for placeholders (missing meaning dressed as a value).
    placeholders: Mapped[list[Any]] = mapped_column(default=list)
