"""The leak check: a field whose presence tells the outcome is left out, a field filled at random is kept.

Generated books (snapshots drawn at random, and the synthetic book the scorer is tested on), with
the leak planted in some and absent in others.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from agents.learning.leaks import leaked_features, splits
from agents.learning.scorer import fit_scorer
from agents.learning.synthetic import as_records, synthetic_book
from agents.learning.timeline import OutcomeTimeline
from agents.learning.training import Snapshot, learnable, snapshots, training_labels

NOW = datetime(2025, 6, 10, 15, 0)


def _snaps(n_won: int, n_lost: int, fill, *, seed: int = 1) -> list[Snapshot]:
    """One snapshot per contact; `fill(rng, won)` -> the extra features of that contact."""
    rng = random.Random(seed)
    out = []
    for i in range(n_won + n_lost):
        won = i < n_won
        features = {"source": rng.choice(["ads", "referral"]), "meetings_90d": 0, **fill(rng, won)}
        entry = NOW - timedelta(days=rng.uniform(100, 300))
        out.append(Snapshot(i, entry, entry, int(won), 1.0, features))
    return out


def _sometimes(share_won: float, share_lost: float, name: str = "attr.seniority", value="vp"):
    return lambda rng, won: {name: value} if rng.random() < (share_won if won else share_lost) else {}


@pytest.mark.parametrize(("won", "lost", "leak"), [
    (0.95, 0.05, True),     # the example: almost all of one outcome, almost none of the other
    (0.75, 0.0, True),      # what an enrichment run on open leads left on the demo book (missed before)
    (0.0, 1.0, True),       # a disqualification reason
    (1.0, 0.15, True),      # far apart
    (0.5, 0.5, False),      # at random on both
    (0.6, 0.3, False),      # a real signal: filled more often, not only, on one outcome
    (0.3, 0.01, False),     # rare on both: too few of either to be a split
])
def test_presence_shares_that_split_the_outcomes(won, lost, leak):
    assert splits(won, lost) is leak
    assert splits(lost, won) is leak


def test_a_field_filled_on_most_converted_and_no_other_contact_is_left_out_and_said_why():
    snaps = _snaps(130, 131, _sometimes(0.75, 0.0))
    dropped = leaked_features(snaps)
    assert set(dropped) == {"attr.seniority"}
    assert dropped["attr.seniority"].startswith("filled on ")
    assert "of converted and 0% of other contacts" in dropped["attr.seniority"]


def test_a_field_filled_at_random_on_both_outcomes_is_kept():
    for seed in range(5):
        snaps = _snaps(130, 131, _sometimes(0.4, 0.4), seed=seed)
        assert leaked_features(snaps) == {}


def test_store_columns_are_judged_too_not_only_custom_attributes():
    # A company size typed only on won deals, and a phone taken only from customers.
    def fill(rng, won):
        return {"employee_count": 250.0 if won else None, "has_phone": 1.0 if won else 0.0, "email_kind": "corporate"}

    dropped = leaked_features(_snaps(40, 60, fill))
    assert set(dropped) == {"employee_count", "has_phone"}


def test_what_happened_before_the_snapshot_is_not_judged():
    # Every converted contact was active, no other contact was: engagement, not a value written at the outcome.
    def fill(rng, won):
        return {"days_since_last_activity": 2.0 if won else None, "stage_logged": "sql" if won else None}

    assert leaked_features(_snaps(40, 60, fill)) == {}


def test_too_few_of_one_outcome_to_judge_drops_nothing():
    assert leaked_features(_snaps(9, 60, _sometimes(1.0, 0.0))) == {}


def test_only_contacts_with_a_complete_outcome_are_judged():
    # Every mature contact carries the field (a form question since dropped); the newer ones, all
    # "not converted" for now, do not. Judged over everyone it would look written at the outcome.
    mature = _snaps(60, 60, _sometimes(1.0, 1.0))
    newer = [Snapshot(s.contact_id + 1000, s.entry_at, s.at, 0, s.weight, s.features)
             for s in _snaps(0, 400, lambda rng, won: {}, seed=2)]
    assert "attr.seniority" in leaked_features([*mature, *newer])
    assert leaked_features([*mature, *newer], {s.contact_id for s in mature}) == {}


def _fitted(plant) -> tuple:
    records, outcomes = as_records(synthetic_book(300, seed=5))
    rng = random.Random(4)
    for o in outcomes:
        plant(rng, records[o.contact_id].attributes, o.won)
    as_of = max(o.at for o in outcomes)
    known, mature_before = learnable(outcomes, as_of)
    snaps = snapshots(records, training_labels(records, known, as_of, mature_before), OutcomeTimeline(known))
    return fit_scorer(snaps, mature_before=mature_before)


def test_the_scorer_leaves_out_a_field_filled_on_three_quarters_of_converted_and_no_other_contact():
    def plant(rng, attributes, won):
        if won and rng.random() < 0.75:
            attributes["attr.seniority"] = rng.choice(["vp", "director", "manager"])

    scorer = _fitted(plant)
    assert "attr.seniority" in scorer.report.dropped
    assert "attr.seniority" not in scorer.vectorizer.features


def test_the_scorer_keeps_a_field_filled_at_random_on_both_outcomes():
    def plant(rng, attributes, won):
        if rng.random() < 0.5:
            attributes["attr.seniority"] = rng.choice(["vp", "director", "manager"])

    scorer = _fitted(plant)
    assert "attr.seniority" not in scorer.report.dropped
    assert "attr.seniority" in scorer.vectorizer.features
