"""Dry-run warnings a valid file can still deserve: implausible values and rows that would change live views.

A file can pass every check and still be wrong: Maven's accounts.csv gives revenue in millions,
so without a scale every company looks like a corner shop. And a file of old records, imported
as it is, puts years-old deals on the live board and blank people in the lead list. These
warnings say so before anything is written, with counts, and say what to change; none of them
blocks the import.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.importing.history import STALE_AFTER_DAYS, deal_last_touch, stale_before
from crm_core.models import Account, Deal
from crm_core.models.enums import OUTCOME_STAGES, DealStatus

# A company's yearly revenue under this is almost surely a column in thousands or millions.
MIN_COMPANY_REVENUE = 10_000
# File median against the book's median: this far apart means a different unit, not a different market.
MEDIAN_RATIO = 100.0
# Single values this far from the book's median are counted and shown.
OUTLIER_RATIO = 1000.0
MIN_BOOK_VALUES = 20  # fewer stored values give no stable median to compare with
_OUTCOMES = {s.value for s in OUTCOME_STAGES}


class ImportCheck(BaseModel):
    """One warning of a dry run, with how many rows it concerns."""

    topic: str                      # implausible_revenue | amount_scale | amount_outliers | stale_deals | undated_open_deals
                                    # | blank_contacts | stale_contacts | old_activities
    rows: int
    message: str
    examples: list[int] = Field(default_factory=list)   # file rows (header = row 1), a few
    suggests_history: bool = False  # importing as history would keep these rows off the live views


def _money(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def _n(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def _times(ratio: float) -> str:
    return f"{ratio:,.0f}×"


def _book_median(session: Session, column: Any) -> float | None:
    values = [float(v) for v in session.scalars(select(column).where(column.is_not(None), column > 0))]
    return statistics.median(values) if len(values) >= MIN_BOOK_VALUES else None


def _scale_checks(values: list[tuple[int, Decimal]], book_median: float | None, what: str, header: str) -> list[ImportCheck]:
    positive = [(row, float(v)) for row, v in values if v is not None and v > 0]
    if not positive or book_median is None:
        return []
    checks: list[ImportCheck] = []
    file_median = statistics.median(v for _, v in positive)
    ratio = file_median / book_median
    if ratio >= MEDIAN_RATIO or ratio <= 1 / MEDIAN_RATIO:
        direction = f"{_times(ratio)} larger" if ratio > 1 else f"{_times(1 / ratio)} smaller"
        checks.append(ImportCheck(
            topic="amount_scale", rows=len(positive), examples=[r for r, _ in positive[:5]],
            message=f"The {what} in column {header!r} are about {direction} than those already in the book "
                    f"(median {_money(file_median)} against {_money(book_median)}). If the column is in thousands or "
                    f"millions, or in cents, set its scale before importing."))
        return checks
    far = [(row, v) for row, v in positive if v / book_median >= OUTLIER_RATIO or book_median / v >= OUTLIER_RATIO]
    if far:
        checks.append(ImportCheck(
            topic="amount_outliers", rows=len(far), examples=[r for r, _ in far[:5]],
            message=f"{len(far):,} {what} in column {header!r} are over {_times(OUTLIER_RATIO)} away from the book's "
                    f"median of {_money(book_median)} (rows {', '.join(str(r) for r, _ in far[:5])}"
                    f"{', …' if len(far) > 5 else ''}): check them for a missing or extra unit."))
    return checks


def _accounts(session: Session, rows: Sequence[Any], headers: dict[str, str]) -> list[ImportCheck]:
    header = headers.get("annual_revenue")
    if header is None:
        return []
    revenue = [(r.row, r.annual_revenue) for r in rows if r.annual_revenue is not None]
    small = [(row, v) for row, v in revenue if 0 < v < MIN_COMPANY_REVENUE]
    checks: list[ImportCheck] = []
    if small:
        median = statistics.median(float(v) for _, v in revenue)
        checks.append(ImportCheck(
            topic="implausible_revenue", rows=len(small), examples=[r for r, _ in small[:5]],
            message=f"{len(small):,} of {len(revenue):,} companies would have a yearly revenue under "
                    f"{MIN_COMPANY_REVENUE:,} (median {_money(median)}). If column {header!r} is in thousands or "
                    f"millions, set its scale to 1,000 or 1,000,000."))
    if not small or len(small) < len(revenue) / 2:
        checks += _scale_checks(revenue, _book_median(session, Account.annual_revenue), "revenues", header)
    return checks


def _deals(session: Session, rows: Sequence[Any], headers: dict[str, str], now: datetime) -> list[ImportCheck]:
    checks: list[ImportCheck] = []
    header = headers.get("amount")
    if header is not None:
        checks += _scale_checks([(r.row, r.amount) for r in rows if r.amount is not None],
                                _book_median(session, Deal.amount), "amounts", header)
    cutoff = stale_before(now)
    open_rows = [r for r in rows if r.status == DealStatus.OPEN]
    stale = [r for r in open_rows if (t := deal_last_touch(r)) is not None and t < cutoff]
    undated = [r for r in open_rows if deal_last_touch(r) is None]
    if stale:
        oldest = min(deal_last_touch(r) for r in stale)
        checks.append(ImportCheck(
            topic="stale_deals", rows=len(stale), examples=[r.row for r in stale[:5]], suggests_history=True,
            message=f"{_n(len(stale), 'open deal')} {'was' if len(stale) == 1 else 'were'} last touched more than a year ago (the oldest on "
                    f"{oldest:%d %b %Y}). Imported as they are, they show on Pipeline health as open deals "
                    f"and the pipeline agent reviews each. Import as history to record them as lost (stale)."))
    if undated and (stale or len(undated) > len(open_rows) / 2):
        checks.append(ImportCheck(
            topic="undated_open_deals", rows=len(undated), examples=[r.row for r in undated[:5]], suggests_history=True,
            message=f"{_n(len(undated), 'open deal')} {'carries' if len(undated) == 1 else 'carry'} no date at all (no opened or stage date), so nothing says "
                    f"they are still alive. Imported as they are, they show on Pipeline health as entering their stage "
                    f"today. Import as history to record them as lost (stale)."))
    return checks


def _contacts(rows: Sequence[Any], now: datetime) -> list[ImportCheck]:
    checks: list[ImportCheck] = []
    blank = [r for r in rows if not (r.first_name or r.last_name or r.name) and not r.email]
    if blank:
        checks.append(ImportCheck(
            topic="blank_contacts", rows=len(blank), examples=[r.row for r in blank[:5]],
            message=f"{len(blank):,} of {_n(len(rows), 'contact')} {'has' if len(blank) == 1 else 'have'} neither a name nor an email: they would appear "
                    f"as blank people in the lead list and the agents would propose work on each. Map a name or "
                    f"email column if the file has one."))
    cutoff = stale_before(now)
    stale = [r for r in rows if (r.lifecycle_stage is None or r.lifecycle_stage.value not in _OUTCOMES)
             and (t := max((d for d in (r.created_at, r.last_activity_at) if d is not None), default=None)) is not None
             and t < cutoff]
    if stale:
        checks.append(ImportCheck(
            topic="stale_contacts", rows=len(stale), examples=[r.row for r in stale[:5]], suggests_history=True,
            message=f"{_n(len(stale), 'contact is an open lead', 'contacts are open leads')} whose last dated event is more than "
                    f"{STALE_AFTER_DAYS} days old. Imported as they are, each becomes a live lead the agents score, "
                    f"enrich and follow up. Import as history to record them as disqualified (stale) and keep them "
                    f"for learning only."))
    return checks


def _activities(rows: Sequence[Any], now: datetime) -> list[ImportCheck]:
    cutoff = stale_before(now)
    old = [r for r in rows if r.occurred_at < cutoff]
    if not old:
        return []
    return [ImportCheck(
        topic="old_activities", rows=len(old), examples=[r.row for r in old[:5]], suggests_history=True,
        message=f"{len(old):,} of {_n(len(rows), 'activity', 'activities')} happened more than a year ago. Imported as they are, each "
                f"contact they touch is rescored by the lead-scoring agent. Import as history to keep them for "
                f"learning without a decision per row.")]


def check_rows(session: Session, kind: str, rows: Sequence[Any], headers: dict[str, str], now: datetime) -> list[ImportCheck]:
    """Every warning for the validated rows of one file (headers: field -> the CSV header it came from)."""
    if kind == "accounts":
        return _accounts(session, rows, headers)
    if kind == "deals":
        return _deals(session, rows, headers, now)
    if kind == "contacts":
        return _contacts(rows, now)
    if kind == "activities":
        return _activities(rows, now)
    return []
