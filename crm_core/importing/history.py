"""History imports: closed and stale records go in for learning, never onto the live board.

An import "as history" changes three things and nothing else:

- an open deal untouched for more than `STALE_AFTER_DAYS` (its last dated event: stage entered
  or opened), or with no date at all, is imported as lost, closed the day it went stale, so it
  never shows on Pipeline health nor in the pipeline agent's scans; the outcome is what a sales
  team would record for a deal nobody touched for a year;
- a new contact with no outcome whose last dated event is over a year old is imported as
  disqualified on the day it went stale, so the lead-scoring, enrichment and follow-up agents
  leave it alone while the learners still see its history;
- the rows the import creates are listed in an `ImportBatch` marked historical, so the
  scheduler's followers of new contacts and activities skip them (no decision per imported row),
  and the import writes one audit entry, not one per row.

Nothing is written into a contact's custom attributes: a marker there would become a feature
the lead scorer learns from, and it would say the label. A deal closed as stale does carry one
(`STALE_MARK` in its attributes, which no learner reads as a feature): its outcome and closing
date are this import's judgement, not an event, so the pipeline learner leaves it out; learning
from it would teach "old open deals get lost on day 365", which predicts nothing on a live board.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import ImportBatch
from crm_core.models.enums import OUTCOME_STAGES, DealStatus, LifecycleStage

STALE_AFTER_DAYS = 365
# On a deal's attributes: closed as lost by a history import because nobody touched it for a year.
STALE_MARK = "history_import"
STALE_NOTE = f"recorded as lost on import: no activity for {STALE_AFTER_DAYS} days"
_OUTCOMES = {s.value for s in OUTCOME_STAGES}


class HistoryCounts(BaseModel):
    """What a history import does to the rows of one file (filled by the dry run and the import)."""

    deals_closed: int = 0            # won or lost in the file: history as they are
    deals_stale: int = 0             # open but untouched for over a year, or undated: imported as lost (stale)
    deals_live: int = 0              # open and touched within the year: stay on the board
    contacts_stale: int = 0          # new leads whose last event is over a year old: imported as disqualified
    contacts_live: int = 0
    activities: int = 0              # imported without waking an agent per row


def stale_before(now: datetime) -> datetime:
    return now - timedelta(days=STALE_AFTER_DAYS)


def deal_last_touch(row: Any) -> datetime | None:
    """The last dated event of a deal row: when it entered its stage, else when it was opened."""
    dates = [d for d in (row.stage_entered_at, row.opened_at) if d is not None]
    return max(dates) if dates else None


def deals_as_history(rows: Sequence[Any], now: datetime, counts: HistoryCounts) -> list[Any]:
    """Open deal rows untouched for a year (or undated) become lost on the day they went stale."""
    cutoff = stale_before(now)
    out: list[Any] = []
    for row in rows:
        if row.status != DealStatus.OPEN:
            counts.deals_closed += 1
            out.append(row)
            continue
        touched = deal_last_touch(row)
        if touched is not None and touched >= cutoff:
            counts.deals_live += 1
            out.append(row)
            continue
        counts.deals_stale += 1
        # Undated: closed when imported (the import time), since no date says when it went stale.
        closed_at = touched + timedelta(days=STALE_AFTER_DAYS) if touched is not None else None
        out.append(row.model_copy(update={"status": DealStatus.LOST, "closed_at": closed_at, "expected_close": None,
                                          "attributes": {**row.attributes, STALE_MARK: STALE_NOTE}}))
    return out


def contact_creates_as_history(creates: list[dict[str, Any]], now: datetime, counts: HistoryCounts) -> None:
    """New leads whose last dated event is over a year old become disqualified on the day they went stale.

    Only rows this import creates: a contact already in the store is live, whatever the file says.
    """
    cutoff = stale_before(now)
    for values in creates:
        if values.get("lifecycle_stage") in _OUTCOMES:
            continue
        dates = [d for d in (values.get("created_at"), values.get("last_activity_at")) if d is not None and d != now]
        touched = max(dates) if dates else None
        if touched is None or touched >= cutoff:
            counts.contacts_live += 1
            continue
        counts.contacts_stale += 1
        values["lifecycle_stage"] = LifecycleStage.DISQUALIFIED.value
        values["outcome_at"] = touched + timedelta(days=STALE_AFTER_DAYS)


def id_runs(ids: Iterable[int]) -> list[list[int]]:
    """[[first, last], ...] runs of consecutive ids: a 100,000-row import is usually one run."""
    runs: list[list[int]] = []
    for i in sorted(set(ids)):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def historical_ids(session: Session, table: str, ids: Iterable[int]) -> set[int]:
    """Those of `ids` (rows of `table`) that a history import created."""
    wanted = sorted(set(ids))
    if not wanted:
        return set()
    lo, hi = wanted[0], wanted[-1]
    runs = [run for created in session.scalars(select(ImportBatch.created_ids).where(ImportBatch.historical.is_(True)))
            for run in (created or {}).get(table, []) if run[1] >= lo and run[0] <= hi]
    if not runs:
        return set()
    return {i for i in wanted if any(first <= i <= last for first, last in runs)}


def record_batch(session: Session, *, kind: str, table: str, filename: str, actor: str, at: datetime,
                 historical: bool, created_ids: list[int], counts: dict[str, Any]) -> ImportBatch:
    batch = ImportBatch(kind=kind, filename=filename[:500], actor=actor, at=at, historical=historical,
                        created_ids={table: id_runs(created_ids)} if created_ids else {}, counts=counts)
    session.add(batch)
    return batch
