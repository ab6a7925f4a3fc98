"""The deadline someone said, read relative to the day they said it: "by Friday", "tomorrow",
"end of next week", "in two business days", "by December 3", "by the 3rd".

Meeting transcripts name dates the way people speak; a task needs a calendar day. Kept apart from
the meeting agent because it is plain calendar arithmetic with its own rules (a weekday means the
next one, "January 5" said in late December means next year).
"""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from agents.common.phrasing import WEEKDAYS

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m} | {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_MONTH_RX = "|".join(sorted((m for m in _MONTHS), key=len, reverse=True))
_DAY_RX = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_PREP = r"(?:\b(?:by|on|before|until|no later than|for|target)\s+)?"
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "a couple of": 2, "a few": 3}


@dataclass
class DueMatch:
    day: date
    span: tuple[int, int]
    said: str


def _next_weekday(base: date, weekday: int, *, strictly_after: bool = True) -> date:
    ahead = (weekday - base.weekday()) % 7
    if ahead == 0 and strictly_after:
        ahead = 7
    return base + timedelta(days=ahead)


def add_business_days(base: date, n: int) -> date:
    day = base
    while n > 0:
        day += timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def parse_due(text: str, base: date) -> DueMatch | None:
    """The deadline said in a sentence, relative to the meeting's date, with the words that said it."""
    t = text
    patterns: list[tuple[str, Any]] = [
        (_PREP + r"\b(\d{4})-(\d{2})-(\d{2})\b", lambda m: date(int(m.group(1)), int(m.group(2)), int(m.group(3)))),
        (_PREP + rf"\b(?:(?:{_DAY_RX}),?\s+)?(?:the\s+)?({_MONTH_RX})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b",
         lambda m: _month_day(base, _MONTHS[m.group(1).lower()], int(m.group(2)))),
        (_PREP + rf"\b(?:(?:{_DAY_RX}),?\s+)?(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RX})\b",
         lambda m: _month_day(base, _MONTHS[m.group(2).lower()], int(m.group(1)))),
        (r"\b(?:by|on|before|until|no later than)\s+the\s+(\d{1,2})(?:st|nd|rd|th)\b(?!\s+(?:of\s+)?(?:" + _MONTH_RX + r"))",
         lambda m: _day_of_month(base, int(m.group(1)))),
        (_PREP + r"\btomorrow\b", lambda m: base + timedelta(days=1)),
        (_PREP + r"\b(?:today|tonight|end of (?:the )?day|eod)\b", lambda m: base),
        (_PREP + r"\b(?:the )?end of next week\b", lambda m: _next_weekday(base, 4, strictly_after=True) + timedelta(days=7 if base.weekday() < 4 else 0)),
        (_PREP + r"\b(?:the )?(?:end of (?:the |this )?week|this week)\b", lambda m: _next_weekday(base, 4, strictly_after=base.weekday() > 4)),
        (_PREP + r"\bnext week\b", lambda m: _next_weekday(base, 0)),
        (_PREP + r"\b(?:the )?end of (?:the |this )?month\b", lambda m: date(base.year, base.month, calendar.monthrange(base.year, base.month)[1])),
        (_PREP + r"\b(?:in|within)\s+(\d+|one|two|three|four|five|six|seven|a couple of|a few)\s+(business |working )?days\b",
         lambda m: (add_business_days(base, _count(m.group(1))) if m.group(2) else base + timedelta(days=_count(m.group(1))))),
        (_PREP + rf"\b(next\s+)?({_DAY_RX})\b", lambda m: _weekday_said(base, m.group(2), bool(m.group(1)))),
    ]
    for rx, make in patterns:
        m = re.search(rx, t, re.IGNORECASE)
        if m:
            try:
                day = make(m)
            except ValueError:  # "February 30"
                continue
            return DueMatch(day, m.span(), m.group(0).strip())
    return None


def _count(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBERS[word.lower()]


def _month_day(base: date, month: int, day: int) -> date:
    found = date(base.year, month, day)
    # "January 5" said in late December means next year.
    return date(base.year + 1, month, day) if found < base - timedelta(days=60) else found


def _day_of_month(base: date, day: int) -> date:
    """'by the 3rd': the next 3rd of a month on or after the meeting."""
    year, month = base.year, base.month
    for _ in range(3):
        if day <= calendar.monthrange(year, month)[1] and date(year, month, day) >= base:
            return date(year, month, day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    raise ValueError(f"no day {day} in the months after {base}")


def _weekday_said(base: date, name: str, next_: bool) -> date:
    target = _next_weekday(base, WEEKDAYS.index(name.capitalize()))
    if next_ and (target - base).days < 7 and target.isocalendar()[1] == base.isocalendar()[1]:
        target += timedelta(days=7)
    return target
