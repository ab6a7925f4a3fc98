"""Honest model selection under drift: rolling time-ordered folds and a rule for "better than chance".

Folds. The mature contacts (cohorts whose outcomes are nearly all known) are ordered by entry and
cut at `FOLD_CUTS` of their count. Fold k learns from every contact that entered before cut k and
is judged on the mature contacts that entered between cut k and the next cut (the last fold: up
to the newest mature contact), each scored once, at entry. So every candidate is judged several
times, always on a period later than everything it learned from, the newest period included.

The rule. A candidate's validated AUC is the mean of its fold AUCs weighted 1, 2, 3 from the
oldest period to the newest (under drift the newest period is the one that matters most; the
oldest fold also learned from the least history). Its standard error combines each fold's
sampling error (Hanley-McNeil) with the same weights. A candidate may be used only when
    weighted mean AUC >= MIN_AUC (0.55),  weighted mean - 1.645 x SE > 0.5,
    and its AUC on the newest period > 0.5,
i.e. it ranks later periods better than a coin with one-sided 95 % confidence, by a
margin a sales team would notice. The plain logistic regression is the default when it passes:
another candidate replaces it only when it is clearly better on the same folds, i.e. its fold-by-fold
AUC gain over the plain one has a mean at least `MARGIN` and a mean minus 1.645 x its standard
error above 0 (flexibility must earn its place; on a few hundred leads fold AUCs differ by a
hundredth or two by chance alone). Otherwise, among the
candidates that pass, the one with the highest mean AUC is chosen, a simpler one within `TIE` of it
winning the tie. When none passes, there is no learned model: the prior scores, and the reasons
and the Lead scores page say why.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from agents.learning import metrics
from agents.learning.candidates import PLAIN, Candidate, Model, fit
from agents.learning.vectorize import Vectorizer

FOLD_CUTS = (0.55, 0.7, 0.85)
SINGLE_CUT = (0.7,)            # a small book: one fold
MIN_FOLD_TEST = 12             # contacts in a fold's test window
MIN_FOLD_CLASS = 3             # of each outcome in it
MIN_AUC = 0.55
Z = 1.645
TIE = 0.003
MARGIN = 0.01


@dataclass(frozen=True)
class Fold:
    cut: datetime                  # learns from contacts that entered before this
    test_ids: tuple[int, ...]      # mature contacts judged (entry order)


@dataclass
class FoldScore:
    cut: datetime
    contacts: int
    converted: int
    auc: float | None
    se: float | None


@dataclass
class CandidateResult:
    candidate: Candidate
    folds: list[FoldScore] = field(default_factory=list)
    mean_auc: float | None = None
    low: float | None = None
    high: float | None = None
    valid: bool = False
    last_fold_raw: np.ndarray | None = None      # raw log-odds on the newest fold's test contacts
    last_fold_y: np.ndarray | None = None

    def summarise(self) -> None:
        scored = [f for f in self.folds if f.auc is not None and f.se is not None]
        if not scored:
            return
        weights = np.arange(1, len(scored) + 1, dtype=float)  # oldest period 1, newest k
        aucs = np.array([f.auc for f in scored])
        ses = np.array([f.se for f in scored])
        self.mean_auc = float(np.sum(weights * aucs) / weights.sum())
        se = float(np.sqrt(np.sum((weights * ses) ** 2)) / weights.sum())
        self.low, self.high = self.mean_auc - Z * se, self.mean_auc + Z * se
        self.valid = self.mean_auc >= MIN_AUC and self.low > 0.5 and scored[-1].auc > 0.5

    def as_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate.key, "words": self.candidate.label,
            "mean_auc": _r(self.mean_auc), "low": _r(self.low), "high": _r(self.high), "valid": self.valid,
            "fold_aucs": [_r(f.auc) for f in self.folds],
        }


def folds(mature_order: Sequence[int], labels: dict[int, int], entry: dict[int, datetime]) -> list[Fold]:
    """Rolling folds over the mature contacts in entry order; only windows with both outcomes count."""
    n = len(mature_order)
    for cuts in (FOLD_CUTS, SINGLE_CUT):
        out: list[Fold] = []
        bounds = [int(round(n * c)) for c in cuts] + [n]
        for start, stop in zip(bounds, bounds[1:]):
            window = tuple(mature_order[start:stop])
            won = sum(labels[c] for c in window)
            if len(window) >= MIN_FOLD_TEST and won >= MIN_FOLD_CLASS and len(window) - won >= MIN_FOLD_CLASS:
                out.append(Fold(entry[window[0]], window))
        if len(out) >= 2 or (out and cuts is SINGLE_CUT):
            return out
    return []


def evaluate(
    cand: Candidate,
    fold_list: Sequence[Fold],
    *,
    rows: Sequence[dict[str, Any]],
    contact_of: Sequence[int],
    entry: dict[int, datetime],
    first_row: dict[int, int],
    y: np.ndarray,
    w: np.ndarray,
    exclude: set[str],
) -> CandidateResult:
    """The candidate fitted and judged on each fold."""
    result = CandidateResult(cand)
    for k, fold in enumerate(fold_list):
        train = [i for i, c in enumerate(contact_of) if entry[c] < fold.cut]
        test = [first_row[c] for c in fold.test_ids]
        if len({int(y[i]) for i in train}) < 2:
            result.folds.append(FoldScore(fold.cut, len(test), int(y[test].sum()), None, None))
            continue
        vec, model = _fit(cand, rows, train, y, w, exclude)
        raw = model.raw(vec.transform([rows[i] for i in test]))
        yt = y[test]
        auc = metrics.auc(yt, raw)
        n_pos = int(yt.sum())
        interval = metrics.auc_interval(auc, n_pos, len(yt) - n_pos)
        se = None if interval is None else (interval[1] - interval[0]) / (2 * 1.96)
        result.folds.append(FoldScore(fold.cut, len(test), n_pos, auc, se))
        if k == len(fold_list) - 1:
            result.last_fold_raw, result.last_fold_y = raw, yt
    result.summarise()
    return result


def _fit(cand: Candidate, rows, idx: list[int], y: np.ndarray, w: np.ndarray, exclude: set[str]) -> tuple[Vectorizer, Model]:
    vec, model, _ = fit(cand, [rows[i] for i in idx], y[idx], w[idx], exclude)
    return vec, model


def choose(results: Sequence[CandidateResult]) -> tuple[CandidateResult | None, str | None]:
    """(the candidate to use or None, a sentence when the most accurate one could not be used)."""
    judged = [r for r in results if r.mean_auc is not None]
    if not judged:
        return None, None
    best_any = max(judged, key=lambda r: r.mean_auc)
    valid = [r for r in judged if r.valid]
    if not valid:
        return None, (f"no model ranked this book's later leads clearly better than chance: the best, "
                      f"{best_any.candidate.label}, reached AUC {best_any.mean_auc:.2f} "
                      f"(90 % interval {best_any.low:.2f}-{best_any.high:.2f}) over {len(best_any.folds)} past periods")
    plain = next((r for r in valid if r.candidate.name == PLAIN and not r.candidate.stable), None)
    if plain is not None:
        better = [r for r in valid if r is not plain and _clearly_better(r, plain)]
        pool = better or [plain]
    else:
        pool = valid
    top = max(r.mean_auc for r in pool)
    chosen = min((r for r in pool if r.mean_auc >= top - TIE), key=lambda r: (r.candidate.simplicity, not r.candidate.stable))
    note = None
    if not best_any.valid:
        note = (f"{best_any.candidate.label} scored AUC {best_any.mean_auc:.2f} but not clearly above chance "
                f"(90 % interval from {best_any.low:.2f}); the simpler {chosen.candidate.label} is used")
    return chosen, note


def _clearly_better(a: CandidateResult, b: CandidateResult) -> bool:
    """`a` beats `b` fold by fold: mean gain >= MARGIN and its one-sided 95 % lower bound above 0."""
    gains = [fa.auc - fb.auc for fa, fb in zip(a.folds, b.folds) if fa.auc is not None and fb.auc is not None]
    if len(gains) < 2:
        return False
    g = np.array(gains)
    return float(g.mean()) >= MARGIN and float(g.mean()) - Z * float(g.std(ddof=1)) / math.sqrt(len(g)) > 0


def _r(v: float | None) -> float | None:
    return None if v is None else round(float(v), 4)
