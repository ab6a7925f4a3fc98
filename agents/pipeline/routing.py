"""Who reviews a red deal: the owner's manager when the deal matters for this book, else the owner.

Escalating every red deal gives a manager one item per red deal whatever its size: on a book of
a hundred open deals, dozens on day one, most of them small. A red deal goes to the manager when
- it is material for this book: its amount, in the reporting currency, is among the largest
  quarter of the open deals' amounts (the largest ceil(n/4) of the n open deals with an amount,
  ties included), so the line moves with the book's currency, size and spread; or
- it has stayed red for RED_DAYS_FOR_MANAGER days (by the agent's assessments across runs),
  whatever its size: a small deal left red that long needs someone above the owner.
Either one reaches the manager once per run of red flags. Any other red deal is the owner's to
review: its follow-up task becomes the review, a low-stakes internal task under the normal policy.

A deal whose size cannot be weighed (no amount recorded, no exchange rate for its currency, or a
book that records no amounts on open deals) is not assumed large: it stays with the owner until
it has been red long enough, and the words say why, so a missing amount can be filled in.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from agents.base import Frozen

if TYPE_CHECKING:
    from agents.pipeline import Context

RED_DAYS_FOR_MANAGER = 14  # two weekly pipeline meetings: long enough that the owner alone did not turn it
TOP_SHARE = 0.25           # the largest quarter of the open deals' amounts is what matters most in a book


class DealSize(Frozen):
    """The deal's amount against the open pipeline's, in the reporting currency (computed by the builder)."""

    currency: str                            # the reporting currency
    amount: float | None = None              # this deal's amount converted; None: no amount, or no rate for its currency
    top_quarter_from: float | None = None    # the smallest amount among the largest quarter of open deals
    open_deals_with_amount: int = 0          # open deals whose amount could be converted


def top_quarter_from(amounts: Sequence[float]) -> float | None:
    """The smallest of the largest ceil(n/4) amounts: a deal at or above it is material; None for no amounts."""
    ranked = sorted((a for a in amounts if a and a > 0), reverse=True)
    if not ranked:
        return None
    return ranked[max(1, math.ceil(len(ranked) * TOP_SHARE)) - 1]


class Route(NamedTuple):
    to_manager: bool
    words: str    # why, in a sentence a sales manager reads


def _money(amount: float, currency: str) -> str:
    return f"{amount:,.0f} {currency}"


def _size(ctx: Context) -> tuple[bool, str]:
    """(material, the reason in words)."""
    size = ctx.size
    if size is None:
        return False, "its size against the rest of the open pipeline is not known"
    if size.open_deals_with_amount == 0 or size.top_quarter_from is None:
        return False, "this book records no amounts on open deals, so size cannot say which red deals matter most"
    if ctx.amount is None:
        return False, "no amount is recorded on it, so its size cannot be weighed against the rest of the pipeline"
    if size.amount is None:
        return False, (f"its amount in {ctx.currency} has no exchange rate to {size.currency}, so its size cannot be "
                       "weighed against the rest of the pipeline")
    shown = _money(ctx.amount, ctx.currency)
    if ctx.currency != size.currency:
        shown += f" (about {_money(size.amount, size.currency)})"
    line = _money(size.top_quarter_from, size.currency)
    deals = f"{size.open_deals_with_amount} open deal{'s' if size.open_deals_with_amount != 1 else ''}"
    if size.amount >= size.top_quarter_from:
        return True, f"at {shown} it is among the largest quarter of this book's {deals} by amount ({line} and up)"
    return False, f"at {shown} it is below the largest quarter of this book's {deals} by amount, which starts at {line}"


def red_days(ctx: Context) -> int:
    if ctx.red_since is None:
        return 0
    return max(0, int((ctx.as_of - ctx.red_since).total_seconds() // 86400))


def _on(day: datetime) -> str:
    return f"{day.day} {day:%B}"


def review_route(ctx: Context, risk: str) -> Route | None:
    """Who reviews this red deal and why; None when nothing new goes to anyone (not red, or already sent)."""
    if risk != "red":
        return None
    reviewed = ctx.manager_review_at is not None and ctx.red_since is not None and ctx.manager_review_at >= ctx.red_since
    if reviewed:
        return None  # the manager has had this run of red flags already
    manager = ctx.manager.name if ctx.manager else "a manager"
    no_manager = "" if ctx.manager else " (the owner has no manager on record)"
    days = red_days(ctx)
    if days >= RED_DAYS_FOR_MANAGER:
        return Route(True, f"Sent to {manager}{no_manager} because it has been red for {days} days (since "
                           f"{_on(ctx.red_since)}): a deal red for {RED_DAYS_FOR_MANAGER} days or more goes to the "
                           "manager whatever its size.")
    if ctx.current.risk == "red":
        return None  # still red, not yet for long: the owner has it
    material, why = _size(ctx)
    if material:
        return Route(True, f"Sent to {manager}{no_manager} because {why}.")
    owner = ctx.owner.name if ctx.owner else "the deal's owner"
    return Route(False, f"Left with {owner} rather than the manager because {why}; it goes to the manager if it "
                        f"stays red for {RED_DAYS_FOR_MANAGER} days.")


__all__ = ["RED_DAYS_FOR_MANAGER", "TOP_SHARE", "DealSize", "Route", "red_days", "review_route", "top_quarter_from"]
