"""Small wording helpers for text an agent writes to a person: weekday names, "a, b and c", and
a moment said relative to now ("yesterday", "on Tuesday").

They exist apart from any one agent because the follow-up and meeting agents, and the working-hours
descriptions they quote, must word the same things the same way.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def day_phrase(moment: datetime, now: datetime) -> str:
    """'earlier today', 'yesterday', 'on Tuesday' (this week), 'on 3 November' (older)."""
    days = (now.date() - moment.date()).days
    if days <= 0:
        return "earlier today"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"on {WEEKDAYS[moment.weekday()]}"
    return f"on {moment.day} {moment:%B}"


def join_words(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
