"""The learned lead scorer: L2-regularised logistic regression over every feature, calibrated.

Fitting, in time order and never looking at the rows it is judged on:
  1. Contacts are ordered by when they entered the book. The hold-out is the newest quarter of
     the mature contacts (cohorts whose outcomes are nearly all known: `training.learnable`);
     the model learns from every other contact, including newer ones with a quick outcome.
  2. The regularisation strength is chosen on a validation split inside the older part
     (its own newest quarter), never on the hold-out.
  3. The hold-out gives the AUC the model reports and fits the Platt calibration, so a score
     of 70 means about 70 % of such contacts converted in the most recent history.
  4. Tier cut-offs come from the calibrated hold-out scores of leads as they arrived: hot is
     the top 15 %, warm the next 35 %, cold the rest.
  5. The model that is kept is the one the hold-out judged and calibrated (no refit: a refit
     would change the scale the calibration was fitted for). It still knows the newest leads:
     the contacts newer than the maturity line are all in the part it learns from.
A custom attribute filled on nearly every contact of one outcome and almost none of the other
was most likely written when the outcome happened (a "lost reason", a contract number); it is
left out and the report says so. Engagement the history never showed (no web log was imported)
borrows the prior's weight, so a new pricing-page view still moves the score.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from datetime import datetime
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from agents.learning import metrics, prior
from agents.learning.calibration import Platt
from agents.learning.explain import Contribution, Estimate, with_points
from agents.learning.training import Snapshot
from agents.learning.vectorize import Vectorizer

MIN_OUTCOMES = 30
MIN_PER_CLASS = 5
HOLDOUT_FRACTION = 0.25
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
DEFAULT_C = 0.1
HOT_QUANTILE = 0.85
WARM_QUANTILE = 0.50
LEAK_GAP = 0.8  # presence-rate gap between outcomes that marks an attribute written at the outcome
VERSION = 1


class NotEnoughHistory(Exception):
    """Too few outcomes (or only one kind) to learn from; the message says how many."""


@dataclass
class TrainingReport:
    contacts: int
    snapshots: int
    converted: int
    not_converted: int
    holdout_contacts: int
    holdout_auc: float | None
    holdout_auc_interval: tuple[float, float] | None
    holdout_brier: float | None
    regularisation_c: float
    base_rate: float  # conversion rate of the complete (mature) cohorts
    dropped: dict[str, str] = field(default_factory=dict)  # feature -> why it was left out
    newest_entry: str | None = None  # when the newest contact it learned from entered (ISO)

    def as_dict(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts, "snapshots": self.snapshots, "converted": self.converted,
            "not_converted": self.not_converted, "holdout_contacts": self.holdout_contacts,
            "holdout_auc": self.holdout_auc, "holdout_auc_interval": list(self.holdout_auc_interval) if self.holdout_auc_interval else None,
            "holdout_brier": self.holdout_brier, "regularisation_c": self.regularisation_c, "base_rate": self.base_rate,
            "dropped": self.dropped, "newest_entry": self.newest_entry,
        }


@dataclass
class LeadScorer:
    vectorizer: Vectorizer
    coef: np.ndarray
    intercept: float
    column_means: np.ndarray
    platt: Platt
    hot_min: int
    warm_min: int
    report: TrainingReport

    # -- scoring -------------------------------------------------------------------------
    def _raw(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        return self.vectorizer.transform(rows) @ self.coef + self.intercept

    def _silent_effects(self, row: dict[str, Any]) -> list[Contribution]:
        learned = set(self.vectorizer.numeric)
        return prior.engagement_effects(row, only=set(prior.PER_UNIT) - learned)

    def predict_proba(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        log_odds = self.platt.log_odds(self._raw(rows))
        extra = np.array([sum(c.effect for c in self._silent_effects(row)) for row in rows])
        return 1.0 / (1.0 + np.exp(-np.clip(log_odds + extra, -30, 30)))

    def estimate(self, row: dict[str, Any]) -> Estimate:
        x = self.vectorizer.transform([row]).toarray()[0]
        slope = self.platt.slope
        deltas = slope * self.coef * (x - self.column_means)
        by_feature: dict[str, float] = {}
        for (feature, _), d in zip(self.vectorizer.columns, deltas):
            by_feature[feature] = by_feature.get(feature, 0.0) + float(d)
        log_odds = float(self.platt.log_odds(float(x @ self.coef + self.intercept)))
        parts = [Contribution(f, row.get(f), e) for f, e in by_feature.items() if abs(e) > 1e-6]
        silent = self._silent_effects(row)
        log_odds += sum(c.effect for c in silent)
        notes = []
        if silent:
            names = ", ".join(sorted(c.feature for c in silent))
            notes.append(f"history holds none of this engagement to learn from ({names}); the prior's weight is used")
        return Estimate(
            probability=1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, log_odds)))),
            log_odds=log_odds,
            contributions=tuple(with_points(parts + silent, log_odds)),
            kind="learned",
            notes=tuple(notes),
        )

    def tier(self, score: int) -> str:
        return "hot" if score >= self.hot_min else "warm" if score >= self.warm_min else "cold"

    # -- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION, "vectorizer": self.vectorizer.to_dict(), "coef": self.coef.tolist(),
            "intercept": self.intercept, "column_means": self.column_means.tolist(),
            "platt": [self.platt.slope, self.platt.intercept], "hot_min": self.hot_min, "warm_min": self.warm_min,
            "report": self.report.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeadScorer:
        if data.get("version") != VERSION:
            raise ValueError(f"lead scorer snapshot version {data.get('version')!r}, expected {VERSION}")
        rep = dict(data["report"])
        interval = rep.pop("holdout_auc_interval")
        report = TrainingReport(**rep, holdout_auc_interval=tuple(interval) if interval else None)
        return cls(
            vectorizer=Vectorizer.from_dict(data["vectorizer"]), coef=np.asarray(data["coef"], dtype=float),
            intercept=float(data["intercept"]), column_means=np.asarray(data["column_means"], dtype=float),
            platt=Platt(*data["platt"]), hot_min=int(data["hot_min"]), warm_min=int(data["warm_min"]), report=report,
        )


# -- fitting ------------------------------------------------------------------------------
def _contacts_by_entry(snaps: Sequence[Snapshot]) -> list[int]:
    entry = {s.contact_id: s.entry_at for s in snaps}
    return sorted(entry, key=lambda cid: (entry[cid], cid))


def _split(order: list[int], labels: dict[int, int], fraction: float, mature: set[int] | None = None) -> tuple[set[int], set[int]] | None:
    """(learn, hold out) contact sets with both outcomes on each side, or None.

    The hold-out is the newest `fraction` of the mature contacts (of all when `mature` is None);
    every other contact is learned from. Never the newest immature contacts: only their quick
    outcomes are known, and a hold-out of those would calibrate every score upwards.
    """
    pool = [c for c in order if c in mature] if mature is not None else order
    n = len(pool)
    for frac in (fraction, 0.3, 0.4, 0.5):
        held = set(pool[n - max(1, int(round(n * frac))):])
        learn = [c for c in order if c not in held]
        if all(sum(labels[c] == k for c in side) >= 2 for side in (learn, held) for k in (0, 1)):
            return set(learn), held
    return None


def leaked_attributes(snaps: Sequence[Snapshot], among: set[int] | None = None) -> dict[str, str]:
    """Custom attributes filled almost only on one outcome: most likely written at the outcome.

    Judged `among` the contacts with a recorded outcome (the mature ones): newer contacts
    still open would dilute an attribute that every disqualified contact carries.
    """
    first: dict[int, Snapshot] = {}
    for s in snaps:
        if among is None or s.contact_id in among:
            first.setdefault(s.contact_id, s)
    won = [s for s in first.values() if s.label == 1]
    lost = [s for s in first.values() if s.label == 0]
    if len(won) < 10 or len(lost) < 10:
        return {}
    keys = {k for s in first.values() for k in s.features if k.startswith(("attr.", "account."))}
    dropped = {}
    for key in sorted(keys):
        pw = sum(s.features.get(key) is not None for s in won) / len(won)
        pl = sum(s.features.get(key) is not None for s in lost) / len(lost)
        if abs(pw - pl) >= LEAK_GAP:
            dropped[key] = (f"filled on {pw:.0%} of converted and {pl:.0%} of other contacts: "
                            "probably written when the outcome happened")
    return dropped


def _fit_lr(rows, y, w, c: float, exclude: set[str]) -> tuple[Vectorizer, LogisticRegression, Any]:
    vec = Vectorizer().fit(rows, exclude=exclude)
    x = vec.transform(rows)
    model = LogisticRegression(C=c, max_iter=2000, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny books; the hold-out judges the result
        model.fit(x, y, sample_weight=w)
    return vec, model, x


def _choose_c(rows, y, w, contacts, order, labels, exclude, mature) -> float:
    split = _split([c for c in order if c in contacts], labels, HOLDOUT_FRACTION, mature)
    if split is None:
        return DEFAULT_C
    old, new = split
    fit_idx = [i for i, c in enumerate(contacts_of(rows)) if c in old]
    val_idx = [i for i, c in enumerate(contacts_of(rows)) if c in new]
    best_c, best_auc = DEFAULT_C, -1.0
    for c in C_GRID:
        vec, model, _ = _fit_lr([rows[i].features for i in fit_idx], y[fit_idx], w[fit_idx], c, exclude)
        scores = vec.transform([rows[i].features for i in val_idx]) @ model.coef_[0]
        value = metrics.auc(y[val_idx], scores)
        if value is not None and value > best_auc + 1e-4:  # ties keep the stronger regularisation
            best_c, best_auc = c, value
    return best_c


def contacts_of(snaps: Sequence[Snapshot]) -> list[int]:
    return [s.contact_id for s in snaps]


def fit_scorer(
    snaps: Sequence[Snapshot],
    *,
    mature_before: datetime | None = None,
    recency_half_life_days: float | None = None,
) -> LeadScorer:
    """Learn a calibrated scorer from labelled snapshots; raises NotEnoughHistory when it cannot."""
    labels = {s.contact_id: s.label for s in snaps}
    n_won = sum(labels.values())
    n_lost = len(labels) - n_won
    if len(labels) < MIN_OUTCOMES or n_won < MIN_PER_CLASS or n_lost < MIN_PER_CLASS:
        raise NotEnoughHistory(
            f"only {len(labels)} contacts with a known outcome ({n_won} converted, {n_lost} not): "
            f"the scorer learns from at least {MIN_OUTCOMES}, with {MIN_PER_CLASS} of each"
        )
    entry = {sn.contact_id: sn.entry_at for sn in snaps}
    mature = {cid for cid, at in entry.items() if at <= mature_before} if mature_before is not None else None
    if mature is not None:
        m_won = sum(labels[c] for c in mature)
        if len(mature) < MIN_OUTCOMES or m_won < MIN_PER_CLASS or len(mature) - m_won < MIN_PER_CLASS:
            raise NotEnoughHistory(
                f"only {len(mature)} contacts are old enough for their outcome to be known ({m_won} converted, "
                f"{len(mature) - m_won} not): the scorer calibrates on at least {MIN_OUTCOMES}, with {MIN_PER_CLASS} of each"
            )
    order = _contacts_by_entry(snaps)
    newest = max(s.entry_at for s in snaps)
    y = np.array([s.label for s in snaps], dtype=int)
    w = np.array([s.weight for s in snaps], dtype=float)
    if recency_half_life_days:
        age = np.array([(newest - s.entry_at).total_seconds() / 86400 for s in snaps])
        w = w * 0.5 ** (age / recency_half_life_days)
    dropped = leaked_attributes(snaps, mature)
    exclude = set(dropped)

    split = _split(order, labels, HOLDOUT_FRACTION, mature)
    ids = contacts_of(snaps)
    if split is None:
        fit_idx, hold_idx = list(range(len(snaps))), []
    else:
        old, new = split
        fit_idx = [i for i, c in enumerate(ids) if c in old]
        hold_idx = [i for i, c in enumerate(ids) if c in new]
    fit_rows = [snaps[i] for i in fit_idx]
    c = _choose_c(fit_rows, y[fit_idx], w[fit_idx], {ids[i] for i in fit_idx}, order, labels, exclude, mature)
    vec, model, x_fit = _fit_lr([s.features for s in fit_rows], y[fit_idx], w[fit_idx], c, exclude)
    coef, intercept = model.coef_[0].astype(float), float(model.intercept_[0])
    column_means = np.asarray(x_fit.multiply(w[fit_idx][:, None]).sum(axis=0)).ravel() / w[fit_idx].sum()

    if hold_idx:
        raw_hold = vec.transform([snaps[i].features for i in hold_idx]) @ coef + intercept
        platt = Platt.fit(raw_hold, y[hold_idx], w[hold_idx])
        calibrated = platt(raw_hold)
        auc = metrics.auc(y[hold_idx], calibrated)
        hold_labels = {ids[i]: labels[ids[i]] for i in hold_idx}
        n_pos = sum(hold_labels.values())
        interval = metrics.auc_interval(auc, n_pos, len(hold_labels) - n_pos)
        brier = metrics.brier(y[hold_idx], calibrated)
        tier_rows = hold_idx
        tier_scores = calibrated
    else:
        # Too few of one outcome to hold any out: calibrated on the rows it learned from (the
        # mature ones when they hold both outcomes), and the report has no hold-out AUC.
        cal = [j for j, i in enumerate(fit_idx) if mature is None or ids[i] in mature]
        if len({int(y[fit_idx][j]) for j in cal}) < 2:
            cal = list(range(len(fit_idx)))
        raw_fit = np.asarray(x_fit @ coef + intercept)[cal]
        y_cal, w_cal = y[fit_idx][cal], w[fit_idx][cal]
        platt = Platt.fit(raw_fit, y_cal, w_cal)
        auc, interval, brier = None, None, None
        tier_rows = [fit_idx[j] for j in cal]
        tier_scores = platt(raw_fit)
    hot_min, warm_min = _tier_cutoffs(tier_scores, _first_snapshot_mask(snaps, tier_rows))
    report = TrainingReport(
        contacts=len(labels), snapshots=len(snaps), converted=n_won, not_converted=n_lost,
        holdout_contacts=len({ids[i] for i in hold_idx}), holdout_auc=_r(auc), holdout_auc_interval=_ri(interval),
        holdout_brier=_r(brier), regularisation_c=c, base_rate=_base_rate(labels, mature), dropped=dropped,
        newest_entry=newest.isoformat(),
    )
    return LeadScorer(vec, coef, intercept, column_means, platt, hot_min, warm_min, report)


def _base_rate(labels: dict[int, int], mature: set[int] | None) -> float:
    """The conversion rate of complete cohorts (newer contacts may still convert)."""
    pool = mature if mature else labels.keys()
    return round(sum(labels[c] for c in pool) / len(pool), 4)


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    v, wt = values[order], weights[order]
    cum = np.cumsum(wt) / wt.sum()
    return float(v[min(np.searchsorted(cum, q), len(v) - 1)])


def _first_snapshot_mask(snaps: Sequence[Snapshot], rows: Sequence[int]) -> np.ndarray:
    """Weight 1 for each contact's first snapshot, 0 for the rest: tiers rank leads as they arrive."""
    seen: set[int] = set()
    mask = np.zeros(len(rows))
    for k, i in enumerate(rows):
        if snaps[i].contact_id not in seen:
            seen.add(snaps[i].contact_id)
            mask[k] = 1.0
    return mask


def _tier_cutoffs(scores: np.ndarray, weights: np.ndarray) -> tuple[int, int]:
    warm = max(1, int(math.ceil(_weighted_quantile(scores, weights, WARM_QUANTILE) * 100)))
    hot = max(warm + 1, int(math.ceil(_weighted_quantile(scores, weights, HOT_QUANTILE) * 100)))
    return min(hot, 100), min(warm, 99)


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)


def _ri(v: tuple[float, float] | None) -> tuple[float, float] | None:
    return None if v is None else (round(v[0], 4), round(v[1], 4))
