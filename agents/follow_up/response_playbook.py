"""What the team's own history teaches about follow-ups: response rates by channel, gap and attempt.

A playbook counts every past email, call and LinkedIn message of the team and whether the contact
responded within a week, by channel, by the days since the previous touch and by the touch's place
in a run of unanswered touches. The follow-up agent decides with it (wait, switch channel, stop) and
the context builder learns it from the store; both need the same buckets, so they live here.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from pydantic import Field

from agents.base import Frozen

RESPONSE_DAYS = 7           # a touch "got a response" when the contact replied, met or picked up within this
PLAYBOOK_DAYS = 365
MIN_EVIDENCE = 20           # touches a rate needs before it may steer a decision
PRIOR_WEIGHT = 10           # each rate is shrunk toward the team's overall rate by this many pseudo-touches
MAX_ATTEMPTS = 5            # from the 5th unanswered touch on, the sequence stops unless history says it pays
OUR_KINDS = ("email", "call", "linkedin_message")
FOLLOW_UP_MIN_GAP = 3       # days of quiet before a touch counts as a follow-up (not a turn in a live conversation)
GAP_BUCKETS: tuple[tuple[float, float | None, str], ...] = (
    (0, 3, "<3"), (3, 5, "3-4"), (5, 8, "5-7"), (8, 14, "8-13"), (14, 30, "14-29"), (30, None, "30+"),
)


class Rate(Frozen):
    sent: int = 0
    responded: int = 0


class Playbook(Frozen):
    """Response rates of the team's own past touches (emails, calls, LinkedIn messages).

    A touch counts as answered when the contact replied, met or picked up the phone within
    `response_days`. Only follow-ups count: touches after at least FOLLOW_UP_MIN_GAP quiet days (or
    the very first touch), since a turn inside a live conversation is answered anyway. `attempt`
    is the touch's place in a run of unanswered touches (1 = the first since the contact last
    responded); `gap` the days since the previous touch either way.
    """

    window_days: int = PLAYBOOK_DAYS
    response_days: int = RESPONSE_DAYS
    touches: int = 0
    responded: int = 0
    by_kind: dict[str, Rate] = Field(default_factory=dict)
    by_attempt: dict[str, Rate] = Field(default_factory=dict)        # "1" .. "4", "5+"
    by_gap: dict[str, Rate] = Field(default_factory=dict)            # GAP_BUCKETS labels
    by_kind_attempt: dict[str, Rate] = Field(default_factory=dict)   # "email:1", "call:3+", ...

    @property
    def base_rate(self) -> float:
        return self.responded / self.touches if self.touches else 0.0

    def smoothed(self, rate: Rate | None) -> float:
        rate = rate or Rate()
        return (rate.responded + PRIOR_WEIGHT * self.base_rate) / (rate.sent + PRIOR_WEIGHT)

    def evidence(self, table: str, key: str) -> tuple[float, Rate] | None:
        """(smoothed rate, counts) when the table has enough touches under `key`, else None."""
        rate = getattr(self, table).get(key)
        if rate is None or rate.sent < MIN_EVIDENCE:
            return None
        return self.smoothed(rate), rate


class TouchEvent(NamedTuple):
    at: datetime
    kind: Literal["email", "call", "linkedin_message", "reply", "meeting"]
    connected: bool = False   # a call that reached the person: a conversation, so a response in itself


def gap_bucket(days: float) -> str:
    for lo, hi, label in GAP_BUCKETS:
        if days >= lo and (hi is None or days < hi):
            return label
    return GAP_BUCKETS[0][2]


def gap_start(label: str) -> float:
    return next(lo for lo, _, name in GAP_BUCKETS if name == label)


def attempt_bucket(n: int) -> str:
    return f"{MAX_ATTEMPTS}+" if n >= MAX_ATTEMPTS else str(max(n, 1))


def kind_attempt_bucket(kind: str, n: int) -> str:
    return f"{kind}:{'3+' if n >= 3 else max(n, 1)}"


def run_state(events: Sequence[TouchEvent]) -> tuple[int, datetime | None]:
    """(our unanswered touches in a row at the end, when they last responded) for a timeline."""
    unanswered, responded_at = 0, None
    for e in sorted(events, key=lambda e: e.at):
        if e.kind in OUR_KINDS and not e.connected:
            unanswered += 1
        else:
            unanswered, responded_at = 0, e.at
    return unanswered, responded_at


def learn_playbook(timelines: Iterable[Sequence[TouchEvent]], as_of: datetime, window_days: int = PLAYBOOK_DAYS) -> Playbook:
    """Count, for every touch of ours in the window, whether the contact responded within RESPONSE_DAYS.

    Touches younger than RESPONSE_DAYS are left out: their answer may still come, and counting
    them as unanswered would teach that recent follow-ups fail.
    """
    since, mature = as_of - timedelta(days=window_days), as_of - timedelta(days=RESPONSE_DAYS)
    tables: dict[str, dict[str, list[int]]] = {"by_kind": {}, "by_attempt": {}, "by_gap": {}, "by_kind_attempt": {}}
    total = [0, 0]

    def count(table: str, key: str, hit: bool) -> None:
        cell = tables[table].setdefault(key, [0, 0])
        cell[0] += 1
        cell[1] += hit

    for timeline in timelines:
        events = sorted((e for e in timeline if e.at <= as_of), key=lambda e: e.at)
        attempts, previous = 0, None
        for i, e in enumerate(events):
            if e.kind in OUR_KINDS:
                attempts += 1
                gap = (e.at - previous).total_seconds() / 86400 if previous is not None else None
                # Only follow-ups are counted: a touch inside a live conversation is answered anyway.
                if since <= e.at <= mature and (gap is None or gap >= FOLLOW_UP_MIN_GAP):
                    limit = e.at + timedelta(days=RESPONSE_DAYS)
                    hit = e.connected or any(r.kind not in OUR_KINDS or r.connected
                                             for r in _between(events, i + 1, e.at, limit))
                    total[0] += 1
                    total[1] += hit
                    count("by_kind", e.kind, hit)
                    count("by_attempt", attempt_bucket(attempts), hit)
                    count("by_kind_attempt", kind_attempt_bucket(e.kind, attempts), hit)
                    if gap is not None:
                        count("by_gap", gap_bucket(gap), hit)
                if e.connected:
                    attempts = 0
            else:
                attempts = 0
            previous = e.at
    order = {label: i for i, (_, _, label) in enumerate(GAP_BUCKETS)}
    return Playbook(window_days=window_days, touches=total[0], responded=total[1],
                    **{t: {k: Rate(sent=v[0], responded=v[1]) for k, v in sorted(cells.items(), key=lambda kv: (order.get(kv[0], 0), kv[0]))}
                       for t, cells in tables.items()})


def _between(events: Sequence[TouchEvent], start: int, after: datetime, until: datetime) -> Iterator[TouchEvent]:
    for e in events[start:]:
        if e.at > until:
            return
        if e.at > after:
            yield e


def pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def rate_words(pb: Playbook, table: str, key: str, what: str) -> str:
    rate = getattr(pb, table).get(key) or Rate()
    return f"{what} got a response {pct(pb.smoothed(rate))} of the time ({rate.responded} of {rate.sent})"


def playbook_summary(pb: Playbook | None) -> list[str]:
    """The learned rates as lines a person (or a model) reads."""
    if pb is None or pb.touches == 0:
        return ["no past touches to learn from yet"]
    lines = [f"{pb.touches} touches in the last {pb.window_days} days, {pct(pb.base_rate)} answered within {pb.response_days} days"]
    for table, title in (("by_kind", "by channel"), ("by_attempt", "by place in an unanswered run"),
                         ("by_gap", "by days since the previous touch"), ("by_kind_attempt", "by channel and place in the run")):
        cells = getattr(pb, table)
        if cells:
            lines.append(f"{title}: " + "; ".join(f"{k} {pct(pb.smoothed(r))} ({r.responded}/{r.sent})" for k, r in cells.items()))
    return lines
