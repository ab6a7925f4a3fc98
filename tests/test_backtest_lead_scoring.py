"""`python -m orchestration backtest lead_scoring`: a time split, the scorer next to two baselines."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from agents.learning.records import PRICING_VIEW, ContactRecord, Event, Outcome
from agents.learning.synthetic import as_records, synthetic_book
from crm_core.errors import UserError
from orchestration.backtest.lead_scoring import run, with_stale_losses
from orchestration.cli import main
from tests.test_lead_scoring_store import write_book

START = datetime(2025, 1, 6)
END = START + timedelta(days=360)


def test_backtest_prints_auc_tiers_calibration_the_candidates_and_the_baselines(store, capsys):
    write_book(synthetic_book(300, seed=21, start=START, days=300), end=END)
    assert main(["backtest", "lead_scoring", "--as-of", END.isoformat()]) == 0
    out = capsys.readouterr().out
    for expected in ("AUC [95% CI]", "lead score", "naive Bayes (Odoo style)", "overall conversion rate",
                     "conversion per tier", "hot", "warm", "cold", "calibration (predicted vs actual conversion per score decile)",
                     "split at", "validated AUC", "later periods", "candidate plain_lr", "plain logistic regression"):
        assert expected in out, expected

    assert main(["backtest", "lead_scoring", "--as-of", END.isoformat(), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scorer"] == "learned" and report["test_contacts"] >= 50
    assert report["model"]["auc"] > 0.65 and report["model"]["auc"] >= report["baseline_rate"]["auc"]
    assert report["baseline_naive_bayes"]["auc"] is not None
    assert report["model"]["auc"] >= report["baseline_logistic"]["auc"] - 0.02  # same split, same run
    assert sum(t["contacts"] for t in report["tiers"]) == report["test_contacts"]
    assert sum(b["contacts"] for b in report["calibration"]) == report["test_contacts"]
    assert "source" in report["naive_bayes_fields"]


def test_backtest_on_an_empty_book_says_what_it_needs(store, capsys):
    assert main(["backtest", "lead_scoring"]) == 2
    assert "known outcome" in capsys.readouterr().err


def test_the_split_is_by_time_and_never_tunes_on_the_test_part():
    records, outcomes = as_records(synthetic_book(400, seed=8, start=START, days=300))
    r = run(records, outcomes, as_of=END, test_fraction=0.3)
    test_ids_entry = sorted(rec.entry_at for cid, rec in records.items() if rec.entry_at > r.split_at)
    assert test_ids_entry and min(test_ids_entry) > r.split_at
    # The scorer's own hold-out (where it tunes and calibrates) lies before the split.
    assert datetime.fromisoformat(r.scorer_training["newest_entry"]) <= r.split_at
    assert r.mature_before <= r.split_at


def test_test_contacts_are_scored_without_anything_after_their_cut_off():
    # Converters read the pricing page hard 3 days after entry; the score is taken 1 day after entry.
    # If the back-test read past the cut-off, the burst would give every converter away.
    rng = np.random.default_rng(5)
    records, outcomes = {}, []
    for i in range(1, 501):
        entry = START + timedelta(days=float(rng.uniform(0, 300)))
        won = bool(rng.random() < 0.4)
        events = [Event(entry + timedelta(days=3, hours=h), PRICING_VIEW, "/pricing") for h in range(6)] if won else []
        records[i] = ContactRecord(i, entry, {"source": str(rng.choice(["a", "b"]))}, {}, events)
        outcomes.append(Outcome(i, won, entry + timedelta(days=float(rng.uniform(10, 30))), entry, (("source", None),)))
    r = run(records, outcomes, as_of=END, score_after_days=1)
    assert r.model.auc < 0.65  # nothing before the cut-off separates them
    later = run(records, outcomes, as_of=END, score_after_days=5)
    assert later.model.auc > 0.95  # after the burst, the same scorer sees it: the test above is not blind


def test_stale_rule_counts_long_open_leads_as_lost_without_looking_past_the_deadline():
    entry = datetime(2025, 1, 1)
    records = {i: ContactRecord(i, entry, {}, {}, []) for i in (1, 2, 3, 4)}
    outcomes = [Outcome(1, True, entry + timedelta(days=10), entry), Outcome(2, True, entry + timedelta(days=90), entry)]
    got = {o.contact_id: (o.won, o.at) for o in with_stale_losses(records, outcomes, as_of=entry + timedelta(days=100), days=60)}
    deadline = entry + timedelta(days=60)
    assert got == {1: (True, entry + timedelta(days=10)), 2: (False, deadline), 3: (False, deadline), 4: (False, deadline)}
    # Before the deadline nothing is known about the open ones.
    early = with_stale_losses(records, outcomes, as_of=entry + timedelta(days=30), days=60)
    assert {o.contact_id for o in early} == {1}


def test_too_few_outcomes_is_a_clear_user_error():
    records, outcomes = as_records(synthetic_book(12, seed=2, start=START, days=100))
    with pytest.raises(UserError, match="only .* contacts have a known outcome"):
        run(records, outcomes, as_of=END)


@pytest.mark.slow
def test_on_the_olist_funnel_the_lead_score_beats_naive_bayes(shared_data, tmp_path, monkeypatch):
    import importlib.util
    import sys
    from pathlib import Path

    bench_path = Path(__file__).resolve().parent.parent / "bench" / "bench_backtest_olist.py"
    spec = importlib.util.spec_from_file_location("bench_backtest_olist", bench_path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_backtest_olist"] = bench
    spec.loader.exec_module(bench)
    url = f"sqlite:///{tmp_path}/olist.db"
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    counts = bench.import_olist(url)
    assert counts == {"contacts": 8000, "deals": 842, "customers": 842}
    result = bench.backtest(url, bench.end_of_data(url), 60)
    assert result.model.auc > result.baseline_naive_bayes.auc
    assert result.model.auc >= result.baseline_logistic.auc
    assert result.model.brier < result.baseline_rate.brier
