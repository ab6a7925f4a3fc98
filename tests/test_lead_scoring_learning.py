"""The learners behind the lead scorer: features, metrics, calibration, the scorer, the baseline."""
from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from agents.learning import metrics
from agents.learning.calibration import Platt, sigmoid
from agents.learning.explain import describe
from agents.learning.features import email_kind, engagement, feature_row, job_function, seniority, static_features
from agents.learning.naive_bayes import NaiveBayes, store_fields
from agents.learning.prior import prior_estimate
from agents.learning.records import PAGE_VIEW, PRICING_VIEW, ContactRecord, Event, Outcome
from agents.learning.scorer import LeadScorer, NotEnoughHistory, fit_scorer
from agents.learning.synthetic import as_records, synthetic_book
from agents.learning.timeline import OutcomeTimeline
from agents.learning.training import learnable, snapshot_times, snapshots, training_labels
from agents.learning.vectorize import OTHER, Vectorizer

NOW = datetime(2025, 6, 10, 15, 0)


def record(events=(), *, entry=None, **fields) -> ContactRecord:
    return ContactRecord(1, entry or NOW - timedelta(days=60), fields, {}, list(events))


# -- metrics ------------------------------------------------------------------------------------
def test_auc_matches_scikit_learn_on_random_scores_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    s = np.round(rng.normal(size=400) + y * 0.7, 1)  # rounded: plenty of ties
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s))


def test_auc_is_one_for_a_perfect_ranking_zero_reversed_half_for_constant():
    assert metrics.auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert metrics.auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0
    assert metrics.auc([0, 1, 0, 1], [0.3] * 4) == 0.5


def test_auc_is_undefined_with_one_outcome_only():
    assert metrics.auc([1, 1, 1], [0.1, 0.5, 0.9]) is None


def test_auc_interval_holds_the_value_and_narrows_with_more_contacts():
    small = metrics.auc_interval(0.75, 20, 20)
    large = metrics.auc_interval(0.75, 2000, 2000)
    assert small[0] < 0.75 < small[1] and large[0] < 0.75 < large[1]
    assert large[1] - large[0] < (small[1] - small[0]) / 5


def test_calibration_table_compares_predicted_and_actual_per_score_decile():
    y = [0, 0, 1, 1, 1, 0]
    p = [0.05, 0.08, 0.72, 0.75, 0.71, 0.74]
    rows = {r.band: r for r in metrics.calibration_table(y, p)}
    assert rows["0-9"].count == 2 and rows["0-9"].actual == 0.0
    assert rows["70-79"].count == 4 and rows["70-79"].actual == 0.75
    assert rows["70-79"].mean_predicted == pytest.approx(0.73)
    assert rows["90-100"].count == 0 and rows["90-100"].actual is None


def test_platt_recovers_a_known_miscalibration():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < sigmoid(0.5 * x - 1.0)).astype(int)
    platt = Platt.fit(x, y)
    assert platt.slope == pytest.approx(0.5, abs=0.05)
    assert platt.intercept == pytest.approx(-1.0, abs=0.08)


def test_platt_keeps_the_order_when_the_hold_out_ranks_backwards():
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0] * 20)
    y = np.array([1, 1, 0, 0, 0] * 20)
    platt = Platt.fit(x, y)
    assert platt.slope > 0
    assert np.mean(platt(x)) == pytest.approx(0.4, abs=0.02)  # the level still matches the hold-out


# -- features -----------------------------------------------------------------------------------
def test_engagement_counts_windows_and_ignores_what_happens_after_the_moment():
    events = [
        Event(NOW - timedelta(hours=2), PRICING_VIEW, "/pricing"),
        Event(NOW - timedelta(hours=1), PRICING_VIEW, "/pricing"),
        Event(NOW - timedelta(days=3), PAGE_VIEW, "/blog"),
        Event(NOW - timedelta(days=8), PRICING_VIEW, "/pricing"),
        Event(NOW - timedelta(days=40), "content_download", "whitepaper"),
        Event(NOW + timedelta(hours=1), PRICING_VIEW, "/pricing"),  # after the moment: invisible
    ]
    e = engagement(record(events), NOW)
    assert (e.pricing_views_today, e.pricing_views_7d, e.pricing_views_30d) == (2, 2, 3)
    assert (e.page_views_today, e.page_views_7d, e.page_views_30d) == (2, 3, 4)
    assert e.downloads_30d == 0 and e.content_recent > 0
    assert e.days_since_last_activity == pytest.approx(1 / 24, abs=1e-3)


def test_recent_events_weigh_more_than_old_ones():
    today = engagement(record([Event(NOW, PRICING_VIEW)]), NOW)
    month_ago = engagement(record([Event(NOW - timedelta(days=28), PRICING_VIEW)]), NOW)
    assert today.pricing_recent == pytest.approx(1.0)
    assert month_ago.pricing_recent == pytest.approx(0.5 ** 4, rel=1e-3)  # half-life 7 days


def test_titles_and_email_domains_become_categories():
    assert seniority("VP of Sales") == "vp" and seniority("Co-Founder & CEO") == "c_level"
    assert seniority("Marketing Manager") == "manager" and seniority("Analyst") == "individual"
    assert seniority(None) is None
    assert job_function("Head of Marketing") == "marketing"
    assert email_kind("ana@gmail.com") == "free" and email_kind("ana@acme.io") == "corporate" and email_kind(None) == "none"


def test_custom_attributes_are_typed_numbers_stay_numbers_text_is_a_category():
    r = ContactRecord(1, NOW, {}, {"attr.seats": "25", "attr.trial": True, "attr.plan": " Pro ",
                                   "attr.tags": ["b", "a"], "attr.blob": {"x": 1}, "account.arr": 1200.0}, [])
    row = static_features(r)
    assert row["attr.seats"] == 25.0 and row["attr.trial"] == 1.0 and row["account.arr"] == 1200.0
    assert row["attr.plan"] == "pro" and row["attr.blob"] is None
    assert row["attr.tags:a"] == row["attr.tags:b"] == 1.0 and "attr.tags" not in row  # a list: one feature per item


def test_feature_row_reads_nothing_after_its_moment():
    late = [Event(NOW + timedelta(days=1), PRICING_VIEW)]
    assert feature_row(record(late), NOW)["pricing_views_30d"] == 0
    assert feature_row(record(late), NOW + timedelta(days=2))["pricing_views_30d"] == 1


def test_features_are_described_in_words():
    assert describe("pricing_views_today", 3) == "read the pricing page 3 times today"
    assert describe("days_since_last_activity", 45.2) == "no activity for 45 days"
    assert describe("days_since_last_activity", None) == "has never been active"
    assert describe("source", "webinar") == "source is webinar"
    assert describe("attr.plan", "pro") == "plan is pro"
    assert describe("account.tech_stack:salesforce", 1.0) == "account tech stack includes salesforce"


# -- vectorizer, timeline, training rows ----------------------------------------------------------
def test_vectorizer_types_columns_and_round_trips_through_json():
    rows = [{"n": float(i), "c": "a" if i % 2 else "b", "rare": "x" if i == 0 else "y"} for i in range(10)]
    rows += [{"n": None, "c": f"rare{i}", "rare": "y"} for i in range(3)]
    vec = Vectorizer(min_count=3).fit(rows)
    assert set(vec.numeric) == {"n"} and vec.numeric["n"].missing_column
    assert vec.categorical["c"] == ["a", "b", OTHER]  # each rare value once, three of them pooled
    assert "rare" not in vec.categorical  # "x" once, "y" everywhere else: one value has nothing to teach
    again = Vectorizer.from_dict(vec.to_dict())
    assert (again.transform(rows) != vec.transform(rows)).nnz == 0


def test_timeline_counts_outcomes_in_the_trailing_window_only():
    def o(i, won, days_ago, source="web"):
        return Outcome(i, won, NOW - timedelta(days=days_ago), NOW - timedelta(days=days_ago + 10), (("source", source),))

    tl = OutcomeTimeline([o(1, True, 5), o(2, False, 10), o(3, True, 100), o(4, True, -1), o(5, False, 20, "ads")])
    seg = tl.segment("source", "Web", NOW)
    assert (seg.closed, seg.converted) == (2, 1)  # 100 days ago is out of the window, tomorrow is not known yet
    assert tl.lift("source", "web", NOW) > 0 > tl.lift("source", "ads", NOW)
    assert tl.lift("source", None, NOW) is None


def test_training_snapshots_are_taken_strictly_before_the_outcome():
    entry = NOW - timedelta(days=50)
    times = snapshot_times(entry, entry + timedelta(days=10))
    assert times == [entry, entry + timedelta(days=7)]
    # An outcome recorded before the contact entered (history imported later): one snapshot before it.
    assert snapshot_times(entry, entry - timedelta(days=1)) == [entry - timedelta(days=1, seconds=1)]


def test_newer_contacts_are_learned_from_even_before_their_outcome_is_known():
    cutoff = NOW
    old = ContactRecord(1, NOW - timedelta(days=200), {}, {}, [])
    new_won = ContactRecord(2, NOW - timedelta(days=5), {}, {}, [])
    new_open = ContactRecord(3, NOW - timedelta(days=4), {}, {}, [])
    known = [Outcome(1, False, NOW - timedelta(days=120), old.entry_at), Outcome(2, True, NOW - timedelta(days=1), new_won.entry_at)]
    labels = training_labels({1: old, 2: new_won, 3: new_open}, known, cutoff, NOW - timedelta(days=60))
    assert {(o.contact_id, o.won) for o in labels} == {(1, False), (2, True), (3, False)}


# -- the learned scorer -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def book():
    records, outcomes = as_records(synthetic_book(500, seed=11))
    as_of = max(o.at for o in outcomes)
    known, mature_before = learnable(outcomes, as_of)
    timeline = OutcomeTimeline(known)
    snaps = snapshots(records, training_labels(records, known, as_of, mature_before), timeline)
    scorer = fit_scorer(snaps, mature_before=mature_before)
    return records, outcomes, timeline, scorer


def test_scorer_learns_the_signal_and_reports_its_validated_auc(book):
    _, _, _, scorer = book
    report = scorer.report
    # The mean over rolling folds, the earliest of which learned from barely half the book.
    assert report.holdout_auc is not None and report.holdout_auc > 0.65
    assert 0.5 < report.holdout_auc_interval[0] < report.holdout_auc < report.holdout_auc_interval[1]
    assert report.holdout_contacts > 20 and len(report.folds) == 3
    assert {c["candidate"] for c in report.candidates} >= {"lr_strong", "lr_medium", "plain_lr", "trees"}
    assert report.candidate in {c["candidate"] for c in report.candidates if c["valid"]}


def test_scores_are_calibrated_on_fresh_contacts_from_the_same_book(book):
    _, _, _, scorer = book
    records, outcomes = as_records(synthetic_book(1500, seed=99))
    rows = [feature_row(records[o.contact_id], records[o.contact_id].entry_at + timedelta(days=7)) for o in outcomes]
    y = np.array([o.won for o in outcomes])
    p = scorer.predict_proba(rows)
    assert metrics.expected_calibration_error(y, p) < 0.08
    assert metrics.auc(y, p) > 0.7
    high = p >= 0.6
    assert high.sum() > 30 and y[high].mean() > 0.55  # of contacts scored 60+, most convert


def test_scorer_explains_a_score_with_the_features_that_moved_it(book):
    records, _, timeline, scorer = book
    entry = NOW - timedelta(days=3)
    keen = ContactRecord(9999, entry, {"source": "referral", "industry": "software", "title": "VP Sales"}, {},
                         [Event(NOW - timedelta(hours=h), PRICING_VIEW, "/pricing") for h in (1, 2, 3)])
    est = scorer.estimate(feature_row(keen, NOW, timeline))
    words = " ".join(c.sentence for c in est.top(8))
    assert "pricing" in words and "source is referral" in words
    by_feature = {c.feature: c for c in est.contributions}
    assert by_feature["pricing_views_30d"].points > 0 and by_feature["source"].points > 0
    assert sum(c.points for c in est.top(3)) > 0
    assert est.probability == pytest.approx(scorer.predict_proba([feature_row(keen, NOW, timeline)])[0])


def test_reading_the_pricing_page_three_times_today_raises_the_learned_score(book):
    _, _, timeline, scorer = book
    entry = NOW - timedelta(days=20)
    fields = {"source": "organic", "industry": "retail", "title": "Analyst"}
    before = ContactRecord(1, entry, fields, {}, [])
    after = ContactRecord(1, entry, fields, {}, [Event(NOW - timedelta(hours=h), PRICING_VIEW, "/pricing") for h in (1, 2, 3)])
    yesterday = scorer.estimate(feature_row(before, NOW - timedelta(days=1), timeline)).probability
    today = scorer.estimate(feature_row(after, NOW, timeline)).probability
    assert today * 100 >= yesterday * 100 + 10


def test_a_snapshot_round_trip_gives_the_same_scores(book):
    records, _, timeline, scorer = book
    again = LeadScorer.from_dict(scorer.to_dict())
    rows = [feature_row(r, NOW, timeline) for r in list(records.values())[:50]]
    assert np.allclose(again.predict_proba(rows), scorer.predict_proba(rows))
    assert (again.hot_min, again.warm_min) == (scorer.hot_min, scorer.warm_min)


def test_too_little_history_raises_not_enough_history():
    records, outcomes = as_records(synthetic_book(25, seed=1))
    as_of = max(o.at for o in outcomes)
    known, mature_before = learnable(outcomes, as_of)
    with pytest.raises(NotEnoughHistory, match="at least 30"):
        fit_scorer(snapshots(records, known, OutcomeTimeline(known)), mature_before=mature_before)


def test_an_attribute_written_at_the_outcome_is_left_out():
    book = synthetic_book(300, seed=5)
    records, outcomes = as_records(book)
    won = {o.contact_id for o in outcomes if o.won}
    for cid in won:  # a "contract id" that only customers have
        records[cid].attributes["attr.contract_id"] = f"C-{cid}"
    as_of = max(o.at for o in outcomes)
    known, mature_before = learnable(outcomes, as_of)
    snaps = snapshots(records, training_labels(records, known, as_of, mature_before), OutcomeTimeline(known))
    scorer = fit_scorer(snaps, mature_before=mature_before)
    assert "attr.contract_id" in scorer.report.dropped
    assert "attr.contract_id" not in scorer.vectorizer.features


def test_engagement_history_never_showed_still_moves_the_score_through_the_prior():
    # A book imported without a web log: the scorer has never seen a page view.
    rng = random.Random(2)
    records, outcomes = {}, []
    for i in range(1, 201):
        entry = NOW - timedelta(days=rng.uniform(100, 400))
        source = rng.choice(["referral", "ads"])
        records[i] = ContactRecord(i, entry, {"source": source}, {}, [])
        won = rng.random() < (0.6 if source == "referral" else 0.2)
        outcomes.append(Outcome(i, won, entry + timedelta(days=30), entry, (("source", source),)))
    known, mature_before = learnable(outcomes, NOW)
    scorer = fit_scorer(snapshots(records, known, None), mature_before=mature_before)
    quiet = ContactRecord(1, NOW - timedelta(days=2), {"source": "ads"}, {}, [])
    keen = ContactRecord(1, NOW - timedelta(days=2), {"source": "ads"}, {}, [Event(NOW - timedelta(hours=h), PRICING_VIEW) for h in (1, 2, 3)])
    base = scorer.estimate(feature_row(quiet, NOW))
    moved = scorer.estimate(feature_row(keen, NOW))
    assert moved.probability * 100 >= base.probability * 100 + 10
    assert any("prior" in n for n in moved.notes)
    assert any(c.source == "prior" and c.feature == "pricing_views_today" for c in moved.contributions)


# -- prior and baseline -------------------------------------------------------------------------
def test_prior_scores_intent_up_and_silence_down_and_says_it_is_a_prior():
    quiet = prior_estimate(feature_row(record([], entry=NOW - timedelta(days=90)), NOW), 0.15)
    keen = prior_estimate(feature_row(record([Event(NOW - timedelta(hours=h), PRICING_VIEW) for h in (1, 2, 3)]), NOW), 0.15)
    assert keen.probability - quiet.probability > 0.2
    assert keen.kind == "prior" and "prior" in keen.notes[0]
    assert keen.top(1)[0].words.startswith("read the pricing page")


def test_naive_bayes_learns_per_field_value_frequencies():
    rng = random.Random(4)
    rows, y = [], []
    for _ in range(600):
        source = rng.choice(["referral", "ads", "organic"])
        won = rng.random() < {"referral": 0.7, "ads": 0.1, "organic": 0.3}[source]
        rows.append({"source": source, "employee_count": float(rng.choice([10, 100, 1000])), "pricing_views_7d": 3})
        y.append(int(won))
    fields = store_fields(rows)
    assert fields == ["employee_count", "source"]  # engagement is not a field; numbers are binned
    nb = NaiveBayes(fields).fit(rows, y)
    p = nb.predict_proba([{"source": "referral"}, {"source": "ads"}, {"source": "never seen"}])
    assert p[0] > 0.5 > p[1]
    assert 0 < p[2] < 1
    assert metrics.auc(y, nb.predict_proba(rows)) > 0.7


def test_metrics_handle_probabilities_at_the_edges():
    assert math.isfinite(metrics.log_loss([1, 0], [1.0, 0.0]))
    assert metrics.brier([1, 0], [1.0, 0.0]) == 0.0
