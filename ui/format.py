"""How numbers, times and risk flags look on every page: one place, so every page agrees.

Pure functions (no Streamlit): the pages, the charts and the tests share them.
"""
from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal

# Internal names in plain words live in one place, shared with the services that word cards.
from crm_core.oversight.wording import (  # noqa: F401 - re-exported for the pages
    ACTION_LABELS,
    FIELD_LABELS,
    REASON_LABELS,
    action_label,
    agent_label,
    compared_percents,
    job_label,
    plain,
    stakes_label,
)

# One palette for the risk flag everywhere: badges, tables and charts.
RISK_COLOURS: dict[str, str] = {
    "red": "#d64545",
    "amber": "#e8a317",
    "green": "#2f9e44",
    "snoozed": "#8a8f98",
    "unassessed": "#b8bcc4",
}
RISK_ICONS: dict[str, str] = {"red": "🔴", "amber": "🟠", "green": "🟢", "snoozed": "💤", "unassessed": "⚪"}
RISK_LABELS: dict[str, str] = {
    "red": "red", "amber": "amber", "green": "green", "snoozed": "snoozed", "unassessed": "not assessed",
}
# Streamlit markdown colour names that match the palette above.
RISK_MARKDOWN: dict[str, str] = {"red": "red", "amber": "orange", "green": "green", "snoozed": "gray", "unassessed": "gray"}
TIER_ICONS: dict[str, str] = {"hot": "🔥", "warm": "☀️", "cold": "❄️"}
STATUS_ICONS: dict[str, str] = {
    "queued": "⏳", "approved": "✅", "edited": "✏️", "rejected": "⛔", "expired": "⌛", "executed": "✅",
    "auto_approved": "🤖", "failed": "❌", "reverted": "↩️", "proposed": "•",
}

_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "BRL": "R$", "CAD": "CA$", "AUD": "A$", "INR": "₹"}


def money(amount: float | Decimal | int | None, currency: str = "USD", *, compact: bool = False) -> str:
    """$12,345 (or $12.3k compact); em dash when unknown. Whole units: cents do not help a pipeline view."""
    if amount is None:
        return "—"
    value = float(amount)
    symbol = _CURRENCY_SYMBOLS.get(currency)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if compact and value >= 1000:
        for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if value >= limit:
                text = f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
                break
    else:
        text = f"{value:,.0f}"
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def percent(fraction: float | None, digits: int = 0) -> str:
    """0.423 -> '42%'; em dash when unknown."""
    if fraction is None:
        return "—"
    return f"{fraction * 100:.{digits}f}%"


def usd_cost(amount: float | Decimal | None) -> str:
    """LLM spend is small: show cents, and fractions of a cent as such."""
    if amount is None:
        return "—"
    value = float(amount)
    if 0 < value < 0.01:
        return f"${value:.4f}"
    return f"${value:,.2f}"


def integer(value: int | float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def risk_key(risk: str | None, snoozed: bool = False) -> str:
    if snoozed:
        return "snoozed"
    return risk if risk in ("red", "amber", "green") else "unassessed"


def risk_badge(risk: str | None, snoozed: bool = False) -> str:
    """'🔴 red' for tables and captions (plain text: works in dataframes too)."""
    key = risk_key(risk, snoozed)
    return f"{RISK_ICONS[key]} {RISK_LABELS[key]}"


def risk_markdown(risk: str | None, snoozed: bool = False) -> str:
    """A coloured badge for st.markdown."""
    key = risk_key(risk, snoozed)
    return f":{RISK_MARKDOWN[key]}-background[{RISK_ICONS[key]} {RISK_LABELS[key]}]"


def trend(change: int | float | None) -> str:
    """Score change since last week as an arrow and a signed number: '▲ +12', '▼ -5', '▶ 0'."""
    if change is None:
        return "new"
    if change > 0:
        return f"▲ +{change:.0f}"
    if change < 0:
        return f"▼ {change:.0f}"
    return "▶ 0"


def tier_badge(tier: str | None) -> str:
    if not tier:
        return "—"
    return f"{TIER_ICONS.get(tier, '')} {tier}".strip()


def status_badge(status: str | None) -> str:
    if not status:
        return "—"
    return f"{STATUS_ICONS.get(status, '•')} {status.replace('_', ' ')}"


def when(value: datetime | date | None, *, with_time: bool = True) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M") if with_time else value.strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%d")


def ago(value: datetime | None, now: datetime) -> str:
    """'3 min ago', '2 h ago', '5 d ago' (both naive UTC)."""
    if value is None:
        return "never"
    seconds = (now - value).total_seconds()
    if seconds < 0:
        return "in the future"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def days(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} d"


def confidence(value: float | None) -> str:
    """0.499 -> '49%': rounded down, so a badge never shows a confidence reaching a threshold
    (50%) that the card's reason says it is below, nor 0.996 as a certain 100%."""
    if value is None:
        return "—"
    return f"{math.floor(value * 100 + 1e-9):.0f}%"


def field_label(field: str) -> str:
    """'next_action' -> 'next step'."""
    return FIELD_LABELS.get(field, field.replace("_", " "))
