"""One row per applied import: what it was, who ran it, and whether it went in as history.

A history import's created rows are listed (as runs of consecutive ids) so the scheduler's
followers of new contacts and activities can skip them: history is for learning, not for an
agent decision on each imported row.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from crm_core import clock
from crm_core.models.base import Base


class ImportBatch(Base):
    __tablename__ = "import_batches"
    __table_args__ = (Index("ix_import_batches_historical", "historical"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))          # accounts | contacts | deals | activities
    filename: Mapped[str] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(default=clock.now)
    historical: Mapped[bool] = mapped_column(default=False)
    # table name -> [[first_id, last_id], ...]: the rows this import created
    created_ids: Mapped[dict[str, Any]] = mapped_column(default=dict)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
