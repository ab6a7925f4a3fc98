"""Back-test of the lead scorer on whatever book is in the store.

The split is by time. Contacts with a known outcome are ordered by when they entered the book;
the newest `test_fraction` of them is the test part. The scorer learns only from outcomes known
at the split moment (exactly what it would have known then) and scores each test contact as if
it were open, `score_after_days` after it entered, reading nothing after that cut-off: its
events up to then, and other contacts' outcomes known by then. Test contacts whose outcome came
before their cut-off were not open then and are left out (and counted).

Three baselines run on the same split in the same run: the overall conversion rate of the
training part (every contact the same score), naive Bayes over the same fields in the manner of
Odoo's predictive lead scoring, and a plain logistic regression on one-hot + scaled fields (the
same rows and fields, no selection, no drift handling: the bar the scorer must clear). Everything the scorer tunes (its regularisation, its
calibration) is tuned on validation splits inside the training part, never on the test part.

Optionally (`stale_after_days`), a contact still without an outcome that many days after it
entered counts as lost from that day, and a conversion later than that counts as lost as well:
on the day the rule fires nobody could know better. Books without disqualified contacts (a
marketing funnel that only records wins) need it to have any losses to learn from.
"""
from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel

from agents.lead_scoring import PRIOR_HOT_MIN, PRIOR_WARM_MIN
from agents.learning import metrics
from agents.learning.features import feature_row
from agents.learning.naive_bayes import NaiveBayes, store_fields
from agents.learning.prior import prior_estimate
from agents.learning.records import ContactRecord, Outcome
from agents.learning.candidates import BASE_CANDIDATES, PLAIN
from agents.learning.candidates import fit as fit_candidate
from agents.learning.leaks import leaked_features
from agents.learning.scorer import LeadScorer, NotEnoughHistory, fit_scorer
from agents.learning.timeline import OutcomeTimeline
from agents.learning.training import known_by, learnable, snapshots, training_labels
from crm_core import clock
from crm_core.contexts.lead_scoring import load_book
from crm_core.db import unit_of_work
from crm_core.errors import UserError

MIN_TEST = 10


class ScoreQuality(BaseModel):
    name: str
    auc: float | None
    auc_low: float | None = None
    auc_high: float | None = None
    brier: float
    log_loss: float


class TierRow(BaseModel):
    tier: str
    min_score: int
    contacts: int
    converted: int
    rate: float | None


class CalibrationBand(BaseModel):
    band: str
    contacts: int
    predicted: float | None
    actual: float | None


class LeadScoringBacktest(BaseModel):
    as_of: datetime
    split_at: datetime
    test_fraction: float
    score_after_days: float
    stale_after_days: float | None
    recency_half_life_days: float | None = None
    contacts_with_outcome: int
    train_contacts: int
    train_converted: int
    test_contacts: int
    test_converted: int
    mature_before: datetime             # the scorer calibrates on contacts that entered before this
    left_out_before_split: int          # entered before the maturity line, outcome known only after the split
    # (those that entered within the maturity before the split are learned from as "not converted
    # by the split": see agents.learning.training.training_labels)
    left_out_not_open_at_cutoff: int    # test contacts whose outcome came before their cut-off
    scorer: str                         # learned | prior
    scorer_training: dict = {}
    model: ScoreQuality
    baseline_rate: ScoreQuality
    baseline_naive_bayes: ScoreQuality
    baseline_logistic: ScoreQuality | None = None
    naive_bayes_fields: list[str]
    tiers: list[TierRow]
    calibration: list[CalibrationBand]
    notes: list[str] = []


def segments_of(record: ContactRecord) -> tuple[tuple[str, str | None], ...]:
    f = record.fields
    return tuple((k, str(f[k]).strip().lower() if f.get(k) not in (None, "") else None) for k in ("source", "industry"))


def with_stale_losses(records: Mapping[int, ContactRecord], outcomes: Sequence[Outcome], *, as_of: datetime,
                      days: float) -> list[Outcome]:
    """Outcomes plus the stale rule: no conversion within `days` of entry counts as lost at that moment."""
    known = {o.contact_id: o for o in outcomes}
    out: list[Outcome] = []
    for cid, record in records.items():
        deadline = record.entry_at + timedelta(days=days)
        o = known.get(cid)
        if o is not None and o.at <= deadline:
            out.append(o)
        elif deadline <= as_of:
            out.append(Outcome(cid, False, deadline, record.entry_at, segments_of(record)))
    return out


def _quality(name: str, y: np.ndarray, p: np.ndarray) -> ScoreQuality:
    auc = metrics.auc(y, p)
    n_pos = int(y.sum())
    ci = metrics.auc_interval(auc, n_pos, len(y) - n_pos)
    return ScoreQuality(name=name, auc=_r(auc), auc_low=_r(ci[0]) if ci else None, auc_high=_r(ci[1]) if ci else None,
                        brier=round(metrics.brier(y, p), 4), log_loss=round(metrics.log_loss(y, p), 4))


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def run(
    records: Mapping[int, ContactRecord],
    outcomes: Sequence[Outcome],
    *,
    as_of: datetime,
    test_fraction: float = 0.3,
    score_after_days: float = 7.0,
    stale_after_days: float | None = None,
    recency_half_life_days: float | None = None,
) -> LeadScoringBacktest:
    if not 0.05 <= test_fraction <= 0.8:
        raise UserError(f"--test-fraction {test_fraction}: use a share between 0.05 and 0.8")
    if stale_after_days is not None:
        outcomes = with_stale_losses(records, outcomes, as_of=as_of, days=stale_after_days)
    known = sorted((o for o in known_by(outcomes, as_of) if o.contact_id in records), key=lambda o: (o.entry_at, o.contact_id))
    if len(known) < 2 * MIN_TEST:
        raise UserError(
            f"lead scoring back-test: only {len(known)} contacts have a known outcome at {as_of:%Y-%m-%d}; "
            f"it needs at least {2 * MIN_TEST} (customers or disqualified contacts, or contacts of won/lost deals"
            + ("" if stale_after_days else "; --stale-after-days counts long-open leads as lost") + ")"
        )
    split_at = known[min(len(known) - 1, int(len(known) * (1 - test_fraction)))].entry_at
    known_at_split, mature_before = learnable(known, split_at)
    train = training_labels(records, known_at_split, split_at, mature_before)
    later = [o for o in known if o.entry_at > split_at]
    left_between = sum(1 for o in known if o.entry_at <= mature_before and o.at > split_at)
    timeline = OutcomeTimeline(known)
    notes: list[str] = []

    test_rows, test_y, not_open = [], [], 0
    cutoff_delta = timedelta(days=score_after_days)
    for o in later:
        cutoff = o.entry_at + cutoff_delta
        if o.at <= cutoff:
            not_open += 1
            continue
        test_rows.append(feature_row(records[o.contact_id], cutoff, timeline))
        test_y.append(int(o.won))
    y = np.asarray(test_y, dtype=int)
    if len(y) < MIN_TEST or y.sum() == 0 or y.sum() == len(y):
        raise UserError(
            f"lead scoring back-test: the test part holds {len(y)} contacts open at their cut-off "
            f"({int(y.sum())} converted); it needs {MIN_TEST} or more with both outcomes. "
            "Try a larger --test-fraction or a smaller --score-after-days."
        )

    snaps = snapshots(records, train, timeline)
    # The overall conversion rate known at the split: that of the complete cohorts.
    rated = [o for o in train if o.entry_at <= mature_before] or train
    base_rate = (sum(o.won for o in rated) / len(rated)) if rated else float(y.mean())
    scorer: LeadScorer | None
    try:
        scorer = fit_scorer(snaps, mature_before=mature_before, recency_half_life_days=recency_half_life_days)
        p_model = scorer.predict_proba(test_rows)
        training = scorer.report.as_dict()
    except NotEnoughHistory as exc:
        scorer = None
        notes.append(f"the scorer fell back to its prior: {exc}")
        training = dict(getattr(exc, "validation", {}))
        p_model = np.array([prior_estimate(row, base_rate if train else None).probability for row in test_rows])

    # The same fields the scorer may use: a field whose presence tells the outcome is left out of both.
    leaked = leaked_features(snaps, {o.contact_id for o in train if o.entry_at <= mature_before})
    fields = [f for f in (store_fields(s.features for s in snaps) if snaps else store_fields(test_rows)) if f not in leaked]
    if snaps and len({s.label for s in snaps}) == 2:
        nb = NaiveBayes(fields).fit([s.features for s in snaps], [s.label for s in snaps], [s.weight for s in snaps])
        p_nb = nb.predict_proba(test_rows)
    else:
        notes.append("naive Bayes had no training rows with both outcomes: it scores every contact at the base rate")
        p_nb = np.full(len(y), base_rate)
    p_base = np.full(len(y), base_rate)
    plain_lr = None
    if snaps and len({s.label for s in snaps}) == 2:
        plain = next(c for c in BASE_CANDIDATES if c.name == PLAIN)
        yy = np.array([s.label for s in snaps], dtype=int)
        ww = np.array([s.weight for s in snaps], dtype=float)
        vec, lr, _ = fit_candidate(plain, [s.features for s in snaps], yy, ww, set(leaked))
        plain_lr = _quality("plain logistic regression", y, 1 / (1 + np.exp(-lr.raw(vec.transform(test_rows)))))

    scores = np.clip(np.rint(p_model * 100), 0, 100).astype(int)
    if scorer is not None:
        hot_min, warm_min = scorer.hot_min, scorer.warm_min
    else:
        hot_min, warm_min = PRIOR_HOT_MIN, PRIOR_WARM_MIN
    tiers = []
    for tier, low, high in (("hot", hot_min, 101), ("warm", warm_min, hot_min), ("cold", -1, warm_min)):
        mask = (scores >= low) & (scores < high)
        n = int(mask.sum())
        tiers.append(TierRow(tier=tier, min_score=max(low, 0), contacts=n, converted=int(y[mask].sum()),
                             rate=_r(y[mask].mean()) if n else None))
    calibration = [
        CalibrationBand(band=row.band, contacts=row.count, predicted=_r(row.mean_predicted), actual=_r(row.actual))
        for row in metrics.calibration_table(y, p_model)
    ]
    return LeadScoringBacktest(
        as_of=as_of, split_at=split_at, test_fraction=test_fraction, score_after_days=score_after_days,
        stale_after_days=stale_after_days, recency_half_life_days=recency_half_life_days,
        contacts_with_outcome=len(known), train_contacts=len(train),
        train_converted=sum(o.won for o in train), test_contacts=len(y), test_converted=int(y.sum()),
        mature_before=mature_before, left_out_before_split=left_between, left_out_not_open_at_cutoff=not_open,
        scorer="learned" if scorer is not None else "prior", scorer_training=training,
        model=_quality("lead score", y, p_model),
        baseline_rate=_quality("overall conversion rate", y, p_base),
        baseline_naive_bayes=_quality("naive Bayes (Odoo style)", y, p_nb), baseline_logistic=plain_lr,
        naive_bayes_fields=fields, tiers=tiers, calibration=calibration, notes=notes,
    )


# -- printing ---------------------------------------------------------------------------------
def _pct(v: float | None) -> str:
    return "   -" if v is None else f"{v * 100:5.1f}%"


def _auc(q: ScoreQuality) -> str:
    if q.auc is None:
        return "  n/a"
    ci = f" [{q.auc_low:.3f}, {q.auc_high:.3f}]" if q.auc_low is not None else ""
    return f"{q.auc:.3f}{ci}"


def format_text(r: LeadScoringBacktest) -> str:
    lines = [
        f"Lead scoring back-test, book as of {r.as_of:%Y-%m-%d %H:%M}",
        f"  {r.contacts_with_outcome} contacts with a known outcome; split at {r.split_at:%Y-%m-%d %H:%M} (newest {r.test_fraction:.0%} by entry)",
        f"  train: {r.train_contacts} contacts, {r.train_converted} converted by the split; "
        f"calibrated on those that entered before {r.mature_before:%Y-%m-%d} (complete cohorts)",
        f"  test:  {r.test_contacts} contacts scored {r.score_after_days:g} days after entry as if open, {r.test_converted} converted "
        f"({r.test_converted / r.test_contacts:.1%})",
        f"  left out: {r.left_out_before_split} mature contacts whose outcome came after the split; "
        f"{r.left_out_not_open_at_cutoff} test contacts closed before their cut-off",
    ]
    if r.stale_after_days is not None:
        lines.append(f"  stale rule: no conversion within {r.stale_after_days:g} days of entry counts as lost")
    t = r.scorer_training
    if r.scorer == "learned":
        lines.append(f"  scorer: {t['candidate_words']}, learned from {t['contacts']} contacts ({t['snapshots']} snapshots), "
                     f"validated AUC {t['holdout_auc']} over {len(t['folds'])} later periods "
                     f"(90% interval {t['holdout_auc_interval'][0]:.3f}-{t['holdout_auc_interval'][1]:.3f}); "
                     f"calibrated to the newest period's rate {t['newest_base_rate']:.1%}")
    else:
        lines.append("  scorer: transparent prior (" + ("no candidate clearly beat chance" if t.get("candidates") else "too little history") + ")")
    for c in t.get("candidates", []):
        aucs = ", ".join("-" if a is None else f"{a:.3f}" for a in c["fold_aucs"])
        mean = "  n/a" if c["mean_auc"] is None else f"{c['mean_auc']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"
        lines.append(f"    candidate {c['candidate']:18s} fold AUCs {aucs:26s} mean {mean}{'' if c['valid'] else '  (not used: not clearly above chance)'}")
    for feature, why in t.get("drifting", {}).items():
        lines.append(f"  drifts over time: {feature}: {why}")
    for feature, why in t.get("dropped", {}).items():
        lines.append(f"  left out {feature}: {why}")
    lines += ["", f"  {'score':28s} {'AUC [95% CI]':24s} {'Brier':>7s} {'log loss':>9s}"]
    for q in (r.model, r.baseline_logistic, r.baseline_naive_bayes, r.baseline_rate):
        if q is None:
            continue
        lines.append(f"  {q.name:28s} {_auc(q):24s} {q.brier:7.4f} {q.log_loss:9.4f}")
    lines += ["", "  conversion per tier", f"  {'tier':6s} {'score':>7s} {'contacts':>9s} {'converted':>10s} {'rate':>7s}"]
    for row in r.tiers:
        lines.append(f"  {row.tier:6s} {'>= ' + str(row.min_score):>7s} {row.contacts:9d} {row.converted:10d} {_pct(row.rate):>7s}")
    lines += ["", "  calibration (predicted vs actual conversion per score decile)",
              f"  {'score':7s} {'contacts':>9s} {'predicted':>10s} {'actual':>8s}"]
    for band in r.calibration:
        if band.contacts:
            lines.append(f"  {band.band:7s} {band.contacts:9d} {_pct(band.predicted):>10s} {_pct(band.actual):>8s}")
    lines.append(f"  naive Bayes fields: {', '.join(r.naive_bayes_fields) or '(none)'}")
    for note in r.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--test-fraction", type=float, default=0.3, help="newest share of contacts (by entry) scored as the test part (default 0.3)")
    parser.add_argument("--score-after-days", type=float, default=7.0,
                        help="score each test contact this many days after it entered, as if open (default 7)")
    parser.add_argument("--stale-after-days", type=float, default=None,
                        help="count a contact with no outcome this many days after entry as lost (default: only recorded outcomes)")
    parser.add_argument("--recency-half-life-days", type=float, default=None,
                        help="weight training outcomes by recency with this half-life (default: all equal)")


def replay(args: argparse.Namespace) -> LeadScoringBacktest:
    """The back-test the command line asks for, on the book in the store as it stood at `--as-of`."""
    as_of = clock.to_naive_utc(args.as_of) if args.as_of else clock.now()
    with unit_of_work(readonly=True) as session:
        records, outcomes = load_book(session, as_of=as_of)
    return run(records, outcomes, as_of=as_of, test_fraction=args.test_fraction, score_after_days=args.score_after_days,
               stale_after_days=args.stale_after_days, recency_half_life_days=args.recency_half_life_days)
