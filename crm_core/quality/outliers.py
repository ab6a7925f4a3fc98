"""Numbers far from the rest (and numbers in the wrong unit), and dates that cannot be true.

Money, head counts and stock levels spread over orders of magnitude, so distance is measured on a
log scale against the median, in units of the median absolute deviation (a robust z that a few
wild values cannot drag). A value far out that lands in the middle of the field once divided by
1,000 (or 100, or a million) is a unit error, not just an outlier: it gets a fix.
"""
from __future__ import annotations

import bisect
import math
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

Z_OUTLIER = 3.5
Z_ORDINARY = 2.5
Z_FITS = 1.5
MIN_VALUES = 20
# An outlier must stand at least this far (log10: 0.5 is about 3x) from every ordinary value.
MIN_GAP_DECADES = 0.5
WIDE_GAP_DECADES = 1.0
# MAD of log10 values below this is treated as this: a near-constant field still flags only wild values.
MIN_LOG_MAD = 0.08
# Thousands and millions are the units exports mix up (a revenue typed in full into a field kept
# in thousands). Only too-large values get a fix: a tiny value is as often a tiny company, and a
# factor of 100 is too close to a real spread to call on its own; both are shown as outliers.
UNIT_FACTORS = (1000.0, 1_000_000.0)
EARLIEST_PLAUSIBLE = datetime(1990, 1, 1)
FUTURE_GRACE = timedelta(days=1)
PLAN_HORIZON = timedelta(days=3650)


class LogScale:
    """Robust z of positive numbers on a log10 scale."""

    def __init__(self, values: list[float]) -> None:
        logs = [math.log10(v) for v in values if v > 0]
        self.size = len(logs)
        self.centre = median(logs) if logs else 0.0
        mad = median(abs(x - self.centre) for x in logs) if logs else 0.0
        self.spread = max(mad, MIN_LOG_MAD)

    def z(self, value: float) -> float:
        return 0.6745 * (math.log10(value) - self.centre) / self.spread


def _gap_to_bulk(bulk: list[float], log_value: float) -> float:
    i = bisect.bisect_left(bulk, log_value)
    near = [abs(log_value - bulk[j]) for j in (i - 1, i) if 0 <= j < len(bulk)]
    return min(near) if near else math.inf


def unit_factor(scale: LogScale, value: float) -> float | None:
    """The factor that brings a far-out value back into the field's range, if one does."""
    best: tuple[float, float] | None = None
    for factor in UNIT_FACTORS:
        fitted = abs(scale.z(value / factor))
        if fitted <= Z_FITS and (best is None or fitted < best[1]):
            best = (factor, fitted)
    return best[0] if best else None


def numeric_outliers(pairs: list[tuple[int, float]]) -> tuple[dict[int, float], list[int]]:
    """(record -> unit factor for unit errors, [records that are outliers with no unit explanation])."""
    positives = [v for _, v in pairs if v > 0]
    if len(positives) < MIN_VALUES:
        return {}, []
    scale = LogScale(positives)
    bulk = sorted(math.log10(v) for v in positives if abs(scale.z(v)) <= Z_ORDINARY)
    units: dict[int, float] = {}
    others: list[int] = []
    for rid, value in pairs:
        z = abs(scale.z(value)) if value > 0 else 0.0
        if z <= Z_ORDINARY:
            continue
        # The tail of a real spread runs on smoothly; a wrong value jumps clear of it. Far out and
        # clear of the rest, or ten times beyond anything ordinary in a field that spreads widely.
        gap = _gap_to_bulk(bulk, math.log10(value))
        if not ((z > Z_OUTLIER and gap >= MIN_GAP_DECADES) or gap >= WIDE_GAP_DECADES):
            continue
        factor = unit_factor(scale, value)
        if factor is not None:
            units[rid] = factor
        else:
            others.append(rid)
    return units, others


def zero_is_placeholder(numbers: list[float]) -> bool:
    """0 stands for "not known" when it is common and nothing else comes near it.

    A head count, a revenue or a deal value of exactly 0 next to values in the hundreds is a form's
    default, not a measurement. Zero must be at least 1 % of the values (and 3 of them), and the
    smallest 5 % of the other values must still be at least 1.
    """
    zeros = sum(1 for v in numbers if v == 0)
    others = sorted(v for v in numbers if v > 0)
    if zeros < 3 or zeros < 0.01 * len(numbers) or len(others) < 10:
        return False
    return others[int(0.05 * (len(others) - 1))] >= 1


def sentinel_numbers(numbers: list[float]) -> set[float]:
    """Values typed to mean "unknown": a repeated -1 where nothing else is negative, and repeated
    runs of nines (9999, 99999...) ten times above the median (999 is a real price)."""
    found: set[float] = set()
    counts: dict[float, int] = {}
    for v in numbers:
        counts[v] = counts.get(v, 0) + 1
    positives = sorted(v for v in numbers if v > 0)
    middle = positives[len(positives) // 2] if positives else 0.0
    negatives = sum(n for v, n in counts.items() if v < 0)
    for v, n in counts.items():
        if v == -1 and n >= 2 and n == negatives:
            found.add(v)
        elif n >= 3 and v >= 9999 and float(v).is_integer() and set(str(int(v))) == {"9"} and v > 10 * middle:
            found.add(v)
    return found


def as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        text = value.strip()
        try:
            return datetime.fromisoformat(text).replace(tzinfo=None)
        except ValueError:
            return None
    return None


def impossible_date(value: datetime, now: datetime, *, planned: bool, earliest: datetime = EARLIEST_PLAUSIBLE) -> str | None:
    """Why a date cannot be right, or None. Planned dates (expected close) may lie ahead, within ten years.

    CRM events (created, engaged, closed, last touched) before 1990 predate any CRM export; a
    custom date field may be older (a founding date), so its callers pass an earlier bound.
    """
    if value < earliest:
        return f"before {earliest.year}"
    if planned:
        return "more than ten years ahead" if value > now + PLAN_HORIZON else None
    return "in the future" if value > now + FUTURE_GRACE else None
