"""What the pipeline agent needs to decide who reviews a red deal: its size against the book, and
how long it has been red (`agents.pipeline.routing` holds the rule).

`deal_sizes()` converts every open deal's amount into the reporting currency (the rate table the
Pipeline health page uses: a currency with no rate is never guessed, its deals are left out of
the ranking) and finds where the largest quarter of those amounts begins. A book that records no
amounts on open deals (`Book.amounts_known_open`) gets sizes without amounts.

`red_history()` reads the agent's past assessments of each deal up to `as_of` (every proposal it
made about the deal carries the flag it assessed): when the current run of red assessments began,
and when a red-deal review last went to the manager. Only three small columns are read per row,
never the decision's whole evidence, so a year of hourly runs stays cheap.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from agents.pipeline.routing import DealSize, top_quarter_from
from agents.pipeline.signals import Book
from crm_core.contexts.reading import chunks
from crm_core.fx import rate_table, reporting_currency
from crm_core.models import Deal, Decision

AGENT = "pipeline"


def deal_sizes(session: Session, book: Book, as_of: datetime) -> dict[int, DealSize]:
    """Every deal open at `as_of`: its amount in the reporting currency and where the top quarter begins."""
    currency = reporting_currency(session)
    open_ids = [d.deal_id for d in book.deals if d.open_at(as_of)]
    if not book.amounts_known_open:
        return {deal_id: DealSize(currency=currency) for deal_id in open_ids}
    rates = rate_table(session)
    currency_of: dict[int, str] = {}
    for chunk in chunks(open_ids):
        for deal_id, code in session.execute(select(Deal.id, Deal.currency).where(Deal.id.in_(chunk))):
            currency_of[deal_id] = code or "USD"
    converted: dict[int, float] = {}
    for deal_id in open_ids:
        amount = book.by_id[deal_id].amount
        value = rates.convert(amount, currency_of.get(deal_id, "USD"), currency) if amount is not None else None
        if value is not None:
            converted[deal_id] = value
    line = top_quarter_from(list(converted.values()))
    counted = sum(1 for v in converted.values() if v > 0)
    return {deal_id: DealSize(currency=currency, amount=round(converted[deal_id], 2) if deal_id in converted else None,
                              top_quarter_from=round(line, 2) if line is not None else None, open_deals_with_amount=counted)
            for deal_id in open_ids}


def red_history(session: Session, ids: Sequence[int], as_of: datetime) -> dict[int, tuple[datetime | None, datetime | None]]:
    """Per deal: (start of the current run of red assessments, last red-deal review sent to the manager)."""
    out: dict[int, tuple[datetime | None, datetime | None]] = {}
    risk = Decision.decision["risk"].as_string()
    for chunk in chunks(list(ids)):
        rows = session.execute(
            select(Decision.subject_id, Decision.created_at, risk, Decision.escalation.is_not(None))
            .where(Decision.agent == AGENT, Decision.subject_type == "deal", Decision.subject_id.in_(chunk),
                   Decision.created_at <= as_of, Decision.status != "failed")
            .order_by(Decision.subject_id, Decision.created_at, Decision.id)
        )
        for deal_id, at, assessed, escalated in rows:
            if assessed is None:
                continue
            since, reviewed = out.get(deal_id, (None, None))
            since = (since or at) if assessed == "red" else None
            if escalated:
                reviewed = at
            out[deal_id] = (since, reviewed)
    return out


__all__ = ["deal_sizes", "red_history"]
