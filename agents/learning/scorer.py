"""The learned lead scorer: chosen among candidates on rolling time-ordered folds, refitted, calibrated.

Fitting, in time order and never judging a model on rows it learned from:
  1. Contacts are ordered by when they entered the book. Fields whose presence tells the outcome
     (`leaks.leaked_features`) and calendar attributes shared by everyone who came in on a day (a
     macro rate: `drift.calendar_features`) are left out; features whose distribution drifts
     with time are found (`drift.drifting_features`).
  2. Every candidate (`candidates`: strong and medium L2 logistic regressions, the plain logistic
     regression, gradient-boosted trees; each with and without the drifting features) is judged
     on rolling folds (`selection`): learn from everything before a cut date, score the mature
     contacts of the next period. A candidate is used only when it clearly beats chance; the
     most accurate such candidate is chosen, a simpler one winning near-ties. If none passes,
     `NoSkill` is raised and the prior scores, saying why.
  3. The chosen candidate is refitted on all history, the newest outcomes included (under drift
     the newest period is the one that matters most).
  4. Calibration: the slope comes from the chosen candidate's scores on the newest fold (out of
     sample); the level is set so that the average score of the newest period's mature
     contacts equals their actual conversion rate, so a base rate that moved is respected.
  5. Tier cut-offs come from the calibrated scores of the newest period's leads as they arrived:
     hot is the top 15 %, warm the next 35 %, cold the rest.
Engagement the history never showed (no web log was imported) borrows the prior's weight, so a
new pricing-page view still moves the score.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from agents.learning import prior
from agents.learning.calibration import Platt, sigmoid
from agents.learning.candidates import PLAIN, Model, candidates, fit, model_from_dict
from agents.learning.drift import calendar_features, drifting_features
from agents.learning.explain import Contribution, Estimate, with_points
from agents.learning.features import ENGAGEMENT_FEATURES
from agents.learning.leaks import leaked_features
from agents.learning.selection import CandidateResult, choose, evaluate, folds
from agents.learning.training import Snapshot
from agents.learning.vectorize import Vectorizer

MIN_OUTCOMES = 30
MIN_PER_CLASS = 5
HOT_QUANTILE = 0.85
WARM_QUANTILE = 0.50
IMPORTANCE_ROWS = 200
VERSION = 2


class NotEnoughHistory(Exception):
    """Too few outcomes (or only one kind) to learn from; the message says how many."""


class NoSkill(NotEnoughHistory):
    """Enough history, but no candidate ranked later periods clearly better than chance."""

    def __init__(self, message: str, validation: dict[str, Any]):
        super().__init__(message)
        self.validation = validation


@dataclass
class TrainingReport:
    contacts: int
    snapshots: int
    converted: int
    not_converted: int
    holdout_contacts: int                 # mature contacts judged over all folds
    holdout_auc: float | None             # the chosen candidate's mean fold AUC (its validated AUC)
    holdout_auc_interval: tuple[float, float] | None  # 90 % interval of that mean
    holdout_brier: float | None           # on the newest fold, after calibration
    regularisation_c: float | None        # None for the trees
    base_rate: float                      # conversion rate of the complete (mature) cohorts
    dropped: dict[str, str] = field(default_factory=dict)  # feature -> why it was left out
    newest_entry: str | None = None       # when the newest contact it learned from entered (ISO)
    candidate: str = ""                   # key of the chosen candidate
    candidate_words: str = ""             # the same in words
    newest_base_rate: float | None = None  # the newest period's conversion rate it is calibrated to
    drifting: dict[str, str] = field(default_factory=dict)
    candidates: list[dict[str, Any]] = field(default_factory=list)  # every candidate's fold AUCs
    folds: list[str] = field(default_factory=list)                  # cut dates (ISO)
    plain_auc: float | None = None        # the plain logistic regression's mean fold AUC, same folds
    note: str | None = None               # why a more accurate candidate was not used
    importance: dict[str, float] = field(default_factory=dict)      # feature -> share of the model's weight

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["holdout_auc_interval"] = list(self.holdout_auc_interval) if self.holdout_auc_interval else None
        return out


@dataclass
class LeadScorer:
    vectorizer: Vectorizer
    model: Model
    column_means: np.ndarray
    platt: Platt
    hot_min: int
    warm_min: int
    report: TrainingReport

    # -- scoring -------------------------------------------------------------------------
    def _raw(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        return self.model.raw(self.vectorizer.transform(rows))

    def _silent_effects(self, row: dict[str, Any]) -> list[Contribution]:
        learned = set(self.vectorizer.numeric)
        return prior.engagement_effects(row, only=set(prior.PER_UNIT) - learned)

    def predict_proba(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        log_odds = self.platt.log_odds(self._raw(rows))
        extra = np.array([sum(c.effect for c in self._silent_effects(row)) for row in rows])
        return 1.0 / (1.0 + np.exp(-np.clip(log_odds + extra, -30, 30)))

    def effects(self, row: dict[str, Any]) -> dict[str, float]:
        """feature -> log-odds it adds against the average row (after calibration)."""
        x = self.vectorizer.transform([row]).toarray()[0]
        deltas = self.platt.slope * self.model.contributions(x, self.column_means)
        by_feature: dict[str, float] = {}
        for (feature, _), d in zip(self.vectorizer.columns, deltas):
            by_feature[feature] = by_feature.get(feature, 0.0) + float(d)
        return by_feature

    def coverage(self, row: dict[str, Any]) -> float:
        """How much of what the model weighs this row holds (share of importance with a value)."""
        if not self.report.importance:
            return 1.0
        return round(sum(share for f, share in self.report.importance.items() if row.get(f) is not None), 4)

    def estimate(self, row: dict[str, Any]) -> Estimate:
        log_odds = float(self.platt.log_odds(self._raw([row]))[0])
        parts = [Contribution(f, row.get(f), e) for f, e in self.effects(row).items() if abs(e) > 1e-6]
        silent = self._silent_effects(row)
        log_odds += sum(c.effect for c in silent)
        notes = []
        if silent:
            names = ", ".join(sorted(c.feature for c in silent))
            notes.append(f"history holds none of this engagement to learn from ({names}); the prior's weight is used")
        if self.report.note:
            notes.append(self.report.note)
        return Estimate(
            probability=1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, log_odds)))),
            log_odds=log_odds,
            contributions=tuple(with_points(parts + silent, log_odds, self.vectorizer.typical_numbers(self.column_means))),
            kind="learned",
            notes=tuple(notes),
        )

    def tier(self, score: int) -> str:
        return "hot" if score >= self.hot_min else "warm" if score >= self.warm_min else "cold"

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION, "vectorizer": self.vectorizer.to_dict(), "model": self.model.to_dict(),
            "column_means": self.column_means.tolist(), "platt": [self.platt.slope, self.platt.intercept],
            "hot_min": self.hot_min, "warm_min": self.warm_min, "report": self.report.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeadScorer:
        if data.get("version") != VERSION:
            raise ValueError(f"lead scorer snapshot version {data.get('version')!r}, expected {VERSION}")
        rep = dict(data["report"])
        interval = rep.pop("holdout_auc_interval")
        report = TrainingReport(**rep, holdout_auc_interval=tuple(interval) if interval else None)
        return cls(
            vectorizer=Vectorizer.from_dict(data["vectorizer"]), model=model_from_dict(data["model"]),
            column_means=np.asarray(data["column_means"], dtype=float), platt=Platt(*data["platt"]),
            hot_min=int(data["hot_min"]), warm_min=int(data["warm_min"]), report=report,
        )


# -- fitting ------------------------------------------------------------------------------
def contacts_of(snaps: Sequence[Snapshot]) -> list[int]:
    return [s.contact_id for s in snaps]


def fit_scorer(
    snaps: Sequence[Snapshot],
    *,
    mature_before: datetime | None = None,
    recency_half_life_days: float | None = None,
) -> LeadScorer:
    """Choose, refit and calibrate a scorer; raises NotEnoughHistory (or NoSkill) when it cannot."""
    labels = {s.contact_id: s.label for s in snaps}
    n_won = sum(labels.values())
    n_lost = len(labels) - n_won
    if len(labels) < MIN_OUTCOMES or n_won < MIN_PER_CLASS or n_lost < MIN_PER_CLASS:
        raise NotEnoughHistory(
            f"only {len(labels)} contacts with a known outcome ({n_won} converted, {n_lost} not): "
            f"the scorer learns from at least {MIN_OUTCOMES}, with {MIN_PER_CLASS} of each"
        )
    entry = {sn.contact_id: sn.entry_at for sn in snaps}
    mature = {cid for cid, at in entry.items() if at <= mature_before} if mature_before is not None else set(labels)
    m_won = sum(labels[c] for c in mature)
    if len(mature) < MIN_OUTCOMES or m_won < MIN_PER_CLASS or len(mature) - m_won < MIN_PER_CLASS:
        raise NotEnoughHistory(
            f"only {len(mature)} contacts are old enough for their outcome to be known ({m_won} converted, "
            f"{len(mature) - m_won} not): the scorer calibrates on at least {MIN_OUTCOMES}, with {MIN_PER_CLASS} of each"
        )
    order = sorted(entry, key=lambda cid: (entry[cid], cid))
    mature_order = [c for c in order if c in mature]
    newest = max(s.entry_at for s in snaps)
    ids = contacts_of(snaps)
    rows = [s.features for s in snaps]
    y = np.array([s.label for s in snaps], dtype=int)
    w = np.array([s.weight for s in snaps], dtype=float)
    if recency_half_life_days:
        age = np.array([(newest - s.entry_at).total_seconds() / 86400 for s in snaps])
        w = w * 0.5 ** (age / recency_half_life_days)
    first_row: dict[int, int] = {}
    for i, s in enumerate(snaps):
        if s.contact_id not in first_row or s.at < snaps[first_row[s.contact_id]].at:
            first_row[s.contact_id] = i

    dropped = leaked_features(snaps, mature)
    first_rows = [rows[first_row[c]] for c in order]
    dropped.update(calendar_features(first_rows, [entry[c].date() for c in order], skip=[*ENGAGEMENT_FEATURES, *dropped]))
    drifting = drifting_features(first_rows, skip=[*ENGAGEMENT_FEATURES, *dropped])
    fold_list = folds(mature_order, labels, entry)
    base = dict(contacts=len(labels), snapshots=len(snaps), converted=n_won, not_converted=n_lost,
                base_rate=_base_rate(labels, mature), dropped=dropped, newest_entry=newest.isoformat(), drifting=drifting)
    if not fold_list:
        raise NoSkill(
            f"{len(mature)} contacts with a complete outcome are too few to test a model on a later period "
            f"(each period needs {MIN_OUTCOMES // 2} or so, with both outcomes)",
            {**base, "candidates": [], "folds": []},
        )
    results: list[CandidateResult] = []
    for cand in candidates(bool(drifting)):
        exclude = set(dropped) | (set(drifting) if cand.stable else set())
        results.append(evaluate(cand, fold_list, rows=rows, contact_of=ids, entry=entry, first_row=first_row,
                                y=y, w=w, exclude=exclude))
    chosen, note = choose(results)
    table = [r.as_dict() for r in results]
    cut_dates = [f.cut.isoformat() for f in fold_list]
    plain = next((r for r in results if r.candidate.key == PLAIN), None)
    plain_auc = _r(plain.mean_auc) if plain else None
    if chosen is None:
        raise NoSkill(note or "no candidate could be judged on a later period",
                      {**base, "candidates": table, "folds": cut_dates, "plain_auc": plain_auc})

    cand = chosen.candidate
    exclude = set(dropped) | (set(drifting) if cand.stable else set())
    vec, model, x_all = fit(cand, rows, y, w, exclude)
    column_means = np.asarray(x_all.multiply(w[:, None]).sum(axis=0)).ravel() / w.sum()

    # Calibration: the slope from the newest fold (out of sample), the level from the newest period.
    slope = 1.0
    if chosen.last_fold_raw is not None and len(set(chosen.last_fold_y.tolist())) == 2:
        slope = Platt.fit(chosen.last_fold_raw, chosen.last_fold_y).slope
    newest_ids = list(fold_list[-1].test_ids)
    newest_rows = [first_row[c] for c in newest_ids]
    raw_new = model.raw(x_all[newest_rows])
    y_new = y[newest_rows]
    rate = (float(y_new.sum()) + 1.0) / (len(y_new) + 2.0)
    platt = Platt(slope, _level(slope * raw_new, rate))
    calibrated = platt(raw_new)
    hot_min, warm_min = _tier_cutoffs(calibrated, np.ones(len(calibrated)))
    brier = float(np.mean((platt(chosen.last_fold_raw) - chosen.last_fold_y) ** 2)) if chosen.last_fold_raw is not None else None

    scorer = LeadScorer(vec, model, column_means, platt, hot_min, warm_min, TrainingReport(
        **base, holdout_contacts=sum(f.contacts for f in chosen.folds), holdout_auc=_r(chosen.mean_auc),
        holdout_auc_interval=_ri((chosen.low, chosen.high)), holdout_brier=_r(brier), regularisation_c=cand.c,
        candidate=cand.key, candidate_words=cand.label, newest_base_rate=_r(float(y_new.mean())),
        candidates=table, folds=cut_dates, plain_auc=plain_auc, note=note,
    ))
    scorer.report.importance = _importance(scorer, [rows[i] for i in newest_rows[-IMPORTANCE_ROWS:]])
    return scorer


def _level(x: np.ndarray, goal: float) -> float:
    """The shift b at which the average of sigmoid(x + b) equals `goal` (bisection: cannot diverge)."""
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if float(np.mean(sigmoid(x + mid))) < goal:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _importance(scorer: LeadScorer, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Each feature's share of the model's average absolute effect over recent leads."""
    total: dict[str, float] = {}
    for row in rows:
        for feature, effect in scorer.effects(row).items():
            total[feature] = total.get(feature, 0.0) + abs(effect)
    s = sum(total.values())
    if s <= 0:
        return {}
    return {f: round(v / s, 4) for f, v in sorted(total.items(), key=lambda kv: -kv[1]) if v / s >= 0.001}


def _base_rate(labels: dict[int, int], mature: set[int] | None) -> float:
    """The conversion rate of complete cohorts (newer contacts may still convert)."""
    pool = mature if mature else labels.keys()
    return round(sum(labels[c] for c in pool) / len(pool), 4)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, wt = values[order], weights[order]
    cum = np.cumsum(wt) / wt.sum()
    return float(v[min(np.searchsorted(cum, q), len(v) - 1)])


def _tier_cutoffs(scores: np.ndarray, weights: np.ndarray) -> tuple[int, int]:
    warm = max(1, int(math.ceil(_weighted_quantile(scores, weights, WARM_QUANTILE) * 100)))
    hot = max(warm + 1, int(math.ceil(_weighted_quantile(scores, weights, HOT_QUANTILE) * 100)))
    return min(hot, 100), min(warm, 99)


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def _ri(v: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if v is None else (round(v[0], 4), round(v[1], 4))
