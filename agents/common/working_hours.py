"""A rep's working hours and when people act: the arithmetic behind every time an agent proposes.

Reps work weekdays in their own time zone between a start and an end hour; contacts open, reply
and meet at hours and on weekdays that a histogram (UTC) records. From those, this module lists
the free :00/:30 starts inside the rep's working hours (clear of busy time), checks a proposed
moment against them, and picks the slot closest to when the contact acts. It lives apart from the
agents because follow-up sends and meeting invites must obey the same rules. All datetimes are
naive UTC.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from agents.base import Frozen
from agents.common.phrasing import WEEKDAYS, join_words

MIN_PATTERN_SAMPLES = 3      # fewer opens/replies than this: the owner's mid-morning is used instead
DEFAULT_LOCAL_HOUR = 10.0
DEFAULT_HORIZON_DAYS = 7     # how far ahead best_slot looks unless told


class RepHours(Frozen):
    """A rep and the hours they work, in their own time zone, [start, end)."""

    user_id: int
    name: str
    timezone: str = "UTC"
    work_start_hour: int = Field(default=9, ge=0, le=23)
    work_end_hour: int = Field(default=17, ge=1, le=24)


class TimeHistogram(Frozen):
    """How often something happened per UTC hour of day and per UTC weekday (Monday = 0)."""

    hours: list[int] = Field(default_factory=lambda: [0] * 24)
    weekdays: list[int] = Field(default_factory=lambda: [0] * 7)
    samples: int = 0

    @field_validator("hours")
    @classmethod
    def _24(cls, v: list[int]) -> list[int]:
        if len(v) != 24:
            raise ValueError("hours needs 24 counts, one per UTC hour")
        return v

    @field_validator("weekdays")
    @classmethod
    def _7(cls, v: list[int]) -> list[int]:
        if len(v) != 7:
            raise ValueError("weekdays needs 7 counts, Monday first")
        return v


def histogram(moments: Iterable[datetime]) -> TimeHistogram:
    hours, weekdays, n = [0] * 24, [0] * 7, 0
    for m in moments:
        hours[m.hour] += 1
        weekdays[m.weekday()] += 1
        n += 1
    return TimeHistogram(hours=hours, weekdays=weekdays, samples=n)


class Interval(Frozen):
    starts_at: datetime
    ends_at: datetime


class Slot(NamedTuple):
    at: datetime   # naive UTC
    basis: str     # why this time, in words


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def to_local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(zone)


def to_utc(local_naive: datetime, zone: ZoneInfo) -> datetime:
    return local_naive.replace(tzinfo=zone).astimezone(UTC).replace(tzinfo=None)


def _hours_of(rep: RepHours) -> tuple[int, int]:
    # A rep record with an empty or inverted day would leave no slot at all: use office hours.
    if rep.work_end_hour <= rep.work_start_hour:
        return 9, 17
    return rep.work_start_hour, rep.work_end_hour


def working_windows(rep: RepHours, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The rep's working hours between `start` and `end` (naive UTC), weekdays of their own zone."""
    zone = zone_of(rep.timezone)
    first, last = to_local(start, zone).date(), to_local(end, zone).date()
    lo_hour, hi_hour = _hours_of(rep)
    out = []
    day = first
    while day <= last:
        if day.weekday() < 5:
            midnight = datetime.combine(day, time(0))
            lo = max(to_utc(midnight + timedelta(hours=lo_hour), zone), start)
            hi = min(to_utc(midnight + timedelta(hours=hi_hour), zone), end)
            if hi > lo:
                out.append((lo, hi))
        day += timedelta(days=1)
    return out


def in_working_hours(rep: RepHours, moment: datetime, minutes: int = 0) -> bool:
    end = moment + timedelta(minutes=minutes)
    return any(lo <= moment and end <= hi for lo, hi in working_windows(rep, moment - timedelta(days=1), end + timedelta(days=1)))


def _ceil(moment: datetime, step_minutes: int) -> datetime:
    base = moment.replace(second=0, microsecond=0)
    if base < moment:
        base += timedelta(minutes=1)
    over = base.minute % step_minutes
    return base + timedelta(minutes=(step_minutes - over) % step_minutes)


def overlaps(start: datetime, minutes: int, busy: Sequence[Interval], buffer_minutes: int = 0) -> bool:
    end = start + timedelta(minutes=max(minutes, 1))
    pad = timedelta(minutes=buffer_minutes)
    return any(start < b.ends_at + pad and b.starts_at - pad < end for b in busy)


def candidate_slots(rep: RepHours, after: datetime, *, horizon_days: int, minutes: int = 0,
                    busy: Sequence[Interval] = (), buffer_minutes: int = 0, step_minutes: int = 30) -> list[datetime]:
    """Every :00/:30 start inside the rep's working hours after `after` that does not hit `busy`."""
    out = []
    length = timedelta(minutes=minutes)
    for lo, hi in working_windows(rep, after, after + timedelta(days=horizon_days)):
        t = _ceil(lo, step_minutes)
        while t + length <= hi and (minutes > 0 or t < hi):
            if not overlaps(t, minutes, busy, buffer_minutes):
                out.append(t)
            t += timedelta(minutes=step_minutes)
    return out


def _circular(a: int, b: int, period: int) -> int:
    d = abs(a - b) % period
    return min(d, period - d)


def hour_weight(hist: TimeHistogram, hour: int) -> float:
    """Counts near this UTC hour, each halved per hour away: a preferred hour out of reach still
    pulls the choice toward the closest reachable one."""
    return sum(c * 0.5 ** _circular(hour, h, 24) for h, c in enumerate(hist.hours) if c)


def describe_histogram(hist: TimeHistogram, what: str) -> str:
    if hist.samples == 0:
        return f"no {what} on record"
    top = max(range(24), key=lambda h: (hist.hours[h], -h))
    near = sum(hist.hours[(top + d) % 24] for d in (-1, 0, 1))
    peak = max(hist.weekdays)
    days = [WEEKDAYS[d] + "s" for d in range(7) if hist.weekdays[d] and hist.weekdays[d] * 2 >= peak]
    day_text = f", most on {join_words(days[:3])}" if days else ""
    return f"{near} of {hist.samples} {what} were around {top:02d}:00 UTC{day_text}"


def best_slot(rep: RepHours, after: datetime, hist: TimeHistogram | None, *, what: str, horizon_days: int = DEFAULT_HORIZON_DAYS,
              minutes: int = 0, busy: Sequence[Interval] = (), buffer_minutes: int = 0,
              fallback: TimeHistogram | None = None, fallback_what: str = "",
              default_local_hour: float = DEFAULT_LOCAL_HOUR, daily_decay: float = 0.8) -> Slot | None:
    """The slot in the rep's free working hours that best matches when this contact acts.

    Score = closeness to the contact's hours x how often they act on that weekday, discounted by
    `daily_decay` per day of waiting. With too little history, the rep's local mid-morning.
    """
    slots = candidate_slots(rep, after, horizon_days=horizon_days, minutes=minutes, busy=busy, buffer_minutes=buffer_minutes)
    if not slots:
        return None
    source, source_what = None, what
    if hist is not None and hist.samples >= MIN_PATTERN_SAMPLES:
        source = hist
    elif fallback is not None and fallback.samples >= MIN_PATTERN_SAMPLES:
        source, source_what = fallback, fallback_what
    zone = zone_of(rep.timezone)

    def score(t: datetime) -> float:
        decay = daily_decay ** ((t - after).total_seconds() / 86400)
        if source is not None:
            return (hour_weight(source, t.hour) + 0.05) * (source.weekdays[t.weekday()] + 0.5) * decay
        local = to_local(t, zone)
        return decay / (1.0 + abs(local.hour + local.minute / 60 - default_local_hour))

    best = max(slots, key=lambda t: (score(t), -t.timestamp()))
    local = to_local(best, zone)
    when = f"{WEEKDAYS[best.weekday()]} {best:%d %b %H:%M} UTC ({local:%H:%M} {rep.timezone} for {rep.name})"
    if source is not None:
        basis = f"{when}: {describe_histogram(source, source_what)}"
    else:
        basis = (f"{when}: too little history of {what} ({hist.samples if hist else 0}), so the first "
                 f"mid-morning slot in {rep.name}'s working hours")
    return Slot(best, basis)


DEFAULT_REP = RepHours(user_id=0, name="the owner")


def end_of_workday(day: date, rep: RepHours) -> datetime:
    hour = rep.work_end_hour if rep.work_end_hour > rep.work_start_hour else 17
    return to_utc(datetime.combine(day, time(0)) + timedelta(hours=hour), zone_of(rep.timezone))
