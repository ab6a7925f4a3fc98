"""Which contacts a model may learn from at a cut-off, and the snapshots it learns from.

A contact is scored many times while it is open (on every event), so one labelled contact
gives several training snapshots: at entry and 7, 30 and 90 days later, each taken strictly
before its outcome and weighted so that every contact counts once. The label is the outcome
the contact eventually reached; the features are what was known at the snapshot.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from agents.learning.features import feature_row
from agents.learning.records import ContactRecord, Outcome
from agents.learning.timeline import OutcomeTimeline

LANDMARK_DAYS = (0, 7, 30, 90)
MATURITY_QUANTILE = 0.8
MAX_MATURITY_DAYS = 365.0
JUST_BEFORE = timedelta(seconds=1)


@dataclass(frozen=True)
class Snapshot:
    contact_id: int
    entry_at: datetime
    at: datetime
    label: int
    weight: float
    features: dict[str, Any]


def known_by(outcomes: Iterable[Outcome], cutoff: datetime) -> list[Outcome]:
    """Outcomes a learner may see at `cutoff`: known at or before it."""
    return [o for o in outcomes if o.at <= cutoff]


def maturity_days(outcomes: Sequence[Outcome]) -> float:
    """How long after entry most outcomes are known: the MATURITY_QUANTILE of entry-to-outcome times."""
    if not outcomes:
        return 0.0
    days = sorted(max(0.0, (o.at - o.entry_at) / timedelta(days=1)) for o in outcomes)
    return min(MAX_MATURITY_DAYS, days[min(len(days) - 1, int(len(days) * MATURITY_QUANTILE))])


def learnable(outcomes: Iterable[Outcome], cutoff: datetime) -> tuple[list[Outcome], datetime]:
    """The outcomes known at `cutoff`, and the maturity line: cohorts that entered before it are
    complete (nearly all of their outcomes are known)."""
    known = known_by(outcomes, cutoff)
    return known, cutoff - timedelta(days=maturity_days(known))


def training_labels(
    records: Mapping[int, ContactRecord], known: Iterable[Outcome], cutoff: datetime, mature_before: datetime
) -> list[Outcome]:
    """Who the scorer learns from at `cutoff`, with which label.

    Mature contacts (entered before the maturity line) with a known outcome, as recorded. Newer
    contacts all of them, converted or not yet: among them only the quick outcomes are known,
    and learning from those alone teaches that whatever is new (a new landing page, a new
    campaign) converts. A newer contact still open counts as "not converted by the cut-off";
    the scorer calibrates, and reports its AUC, on mature contacts only, so this label noise
    moves no score.
    """
    labels = [o for o in known if o.entry_at <= mature_before]
    by_id = {o.contact_id: o for o in known}
    for cid, record in records.items():
        if not mature_before < record.entry_at < cutoff:
            continue
        o = by_id.get(cid)
        labels.append(o if o is not None else Outcome(cid, False, cutoff, record.entry_at))
    return labels


def snapshot_times(entry_at: datetime, outcome_at: datetime, landmarks: Iterable[int] = LANDMARK_DAYS) -> list[datetime]:
    times = [entry_at + timedelta(days=d) for d in landmarks if entry_at + timedelta(days=d) < outcome_at]
    # An outcome recorded at or before entry (a customer imported with its history): one snapshot
    # just before the outcome, which sees the contact's fields and nothing it did afterwards.
    return times or [outcome_at - JUST_BEFORE]


def snapshots(
    records: Mapping[int, ContactRecord],
    outcomes: Iterable[Outcome],
    timeline: OutcomeTimeline | None,
    *,
    landmarks: Iterable[int] = LANDMARK_DAYS,
) -> list[Snapshot]:
    rows: list[Snapshot] = []
    landmarks = tuple(landmarks)
    for o in outcomes:
        record = records.get(o.contact_id)
        if record is None:
            continue
        times = snapshot_times(record.entry_at, o.at, landmarks)
        weight = 1.0 / len(times)
        for at in times:
            rows.append(Snapshot(o.contact_id, record.entry_at, at, int(o.won), weight, feature_row(record, at, timeline)))
    return rows
