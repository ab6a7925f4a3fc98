"""Outcome rates of similar contacts closed in a trailing window, as of any moment.

"Of the contacts from the same source that reached an outcome in the 90 days before this
moment, how many converted?" answered in O(log n) per question, so a back-test can ask it for
every snapshot without looking past the snapshot.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.learning.records import Outcome

WINDOW = timedelta(days=90)
SMOOTHING = 10.0  # pseudo-outcomes at the overall rate: a segment with 3 outcomes says little


@dataclass(frozen=True)
class SegmentRate:
    field: str
    value: str | None
    closed: int      # outcomes in the window
    converted: int
    rate: float | None  # raw share converted; None when nothing closed

    @property
    def label(self) -> str:
        return f"{self.field} = {self.value}" if self.value is not None else f"{self.field} unknown"


class _Series:
    __slots__ = ("times", "wins")

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.wins: list[int] = [0]  # cumulative wins, wins[i] = wins among the first i outcomes

    def add(self, at: datetime, won: bool) -> None:
        self.times.append(at)
        self.wins.append(self.wins[-1] + int(won))

    def window(self, at: datetime, window: timedelta) -> tuple[int, int]:
        hi = bisect_right(self.times, at)
        lo = bisect_right(self.times, at - window)
        return hi - lo, self.wins[hi] - self.wins[lo]


class OutcomeTimeline:
    def __init__(self, outcomes: Iterable[Outcome], window: timedelta = WINDOW) -> None:
        self.window = window
        self._all = _Series()
        self._by: dict[tuple[str, str], _Series] = defaultdict(_Series)
        for o in sorted(outcomes, key=lambda o: o.at):
            self._all.add(o.at, o.won)
            for field, value in o.segments:
                if value is not None:
                    self._by[(field, _key(value))].add(o.at, o.won)

    def overall(self, at: datetime) -> tuple[int, int]:
        return self._all.window(at, self.window)

    def segment(self, field: str, value: str | None, at: datetime) -> SegmentRate:
        if value is None:
            return SegmentRate(field, None, 0, 0, None)
        series = self._by.get((field, _key(value)))
        closed, converted = series.window(at, self.window) if series else (0, 0)
        return SegmentRate(field, value, closed, converted, converted / closed if closed else None)

    def lift(self, field: str, value: str | None, at: datetime) -> float | None:
        """How much better (log-odds) the segment converted than everyone in the same window.

        Relative on purpose: the overall rate moves with the season and the sales team's
        capacity, which says nothing about which lead to call first. None without a segment;
        0 (no evidence either way) when nothing closed in the window, so that "nothing closed
        lately" does not become a feature of its own.
        """
        if value is None:
            return None
        total, total_won = self.overall(at)
        if total_won == 0 or total_won == total:
            return 0.0  # a window of one outcome only (a book that records wins alone) compares nothing
        overall = total_won / total
        rate = self.smoothed_rate(field, value, at)
        rate = min(max(rate, 1e-4), 1 - 1e-4)
        overall = min(max(overall, 1e-4), 1 - 1e-4)
        return math.log(rate / (1 - rate)) - math.log(overall / (1 - overall))

    def smoothed_rate(self, field: str, value: str | None, at: datetime) -> float | None:
        """The segment's rate shrunk toward the overall rate of the same window; None if nothing closed."""
        total, total_won = self.overall(at)
        if total == 0:
            return None
        overall = total_won / total
        if value is None:
            return overall
        seg = self.segment(field, value, at)
        return (seg.converted + SMOOTHING * overall) / (seg.closed + SMOOTHING)


def _key(value: str) -> str:
    return str(value).strip().lower()
