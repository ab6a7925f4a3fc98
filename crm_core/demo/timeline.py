"""Placing demo events in time: office hours at a UTC offset, weekdays, and dates people say."""
from __future__ import annotations

import random
from datetime import datetime, timedelta

DAY = timedelta(days=1)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def working_moment(rng: random.Random, lo: datetime, hi: datetime, utc_offset: int, *,
                   start_hour: float = 8.0, end_hour: float = 18.0, weekend_share: float = 0.1) -> datetime:
    """A moment in [lo, hi], in working hours at `utc_offset` when the window leaves room for it.

    People act on weekdays in their office hours; a short window (a follow-up due today) may not
    contain any, so after a few tries any moment in the window will do.
    """
    if hi <= lo:
        return whole_seconds(lo)
    span = (hi - lo).total_seconds()
    for _ in range(8):
        moment = lo + timedelta(seconds=span * rng.random())
        local = moment + timedelta(hours=utc_offset)
        if local.weekday() >= 5 and rng.random() > weekend_share:
            continue
        hour = rng.uniform(start_hour, end_hour)
        local_midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        candidate = local_midnight + timedelta(hours=hour) - timedelta(hours=utc_offset)
        if lo <= candidate <= hi:
            return whole_seconds(candidate)
    return whole_seconds(lo + timedelta(seconds=span * rng.random()))


def sample_in_segments(rng: random.Random, segments: list[tuple[datetime, datetime, float]]) -> tuple[datetime, datetime] | None:
    """Pick one segment with probability proportional to length x density; returns its bounds."""
    weights = [max((end - start).total_seconds(), 0.0) * density for start, end, density in segments]
    total = sum(weights)
    if total <= 0:
        return None
    pick = rng.random() * total
    for (start, end, _), weight in zip(segments, weights, strict=True):
        if pick < weight:
            return start, end
        pick -= weight
    start, end, _ = segments[-1]
    return start, end


def spoken_date(moment: datetime) -> str:
    """'Thursday, March 12': how people name a deadline in a meeting."""
    return f"{moment:%A}, {moment:%B} {moment.day}"


def next_weekday(moment: datetime, business_days: int) -> datetime:
    """The date `business_days` working days after `moment`."""
    current = moment
    remaining = business_days
    while remaining > 0:
        current += DAY
        if current.weekday() < 5:
            remaining -= 1
    return current
