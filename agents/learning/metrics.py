"""How good a score is: AUC with a confidence interval, Brier score, log loss, calibration table."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


def auc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float | None:
    """Probability that a random converter outscores a random non-converter (ties count half).

    None when one class is absent: the AUC is undefined, and 0.5 would be a lie.
    """
    y = np.asarray(labels, dtype=int)
    s = np.asarray(scores, dtype=float)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)  # average ranks: ties count half (Mann-Whitney U)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auc_interval(value: float | None, n_pos: int, n_neg: int, z: float = 1.96) -> tuple[float, float] | None:
    """95 % interval from the Hanley-McNeil standard error of an AUC."""
    if value is None or n_pos == 0 or n_neg == 0:
        return None
    a = value
    q1 = a / (2 - a)
    q2 = 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n_pos - 1) * (q1 - a * a) + (n_neg - 1) * (q2 - a * a)) / (n_pos * n_neg)
    se = math.sqrt(max(var, 0.0))
    return max(0.0, a - z * se), min(1.0, a + z * se)


def brier(labels, probabilities) -> float:
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def log_loss(labels, probabilities, eps: float = 1e-6) -> float:
    y = np.asarray(labels, dtype=float)
    p = np.clip(np.asarray(probabilities, dtype=float), eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))) if len(y) else float("nan")


@dataclass(frozen=True)
class CalibrationRow:
    band: str            # score band, e.g. "70-79"
    low: int
    high: int
    count: int
    mean_predicted: float | None  # average predicted probability in the band
    actual: float | None          # share that converted


def calibration_table(labels, probabilities, width: int = 10) -> list[CalibrationRow]:
    """Predicted vs actual conversion per score decile (0-9, 10-19, ... 90-100)."""
    y = np.asarray(labels, dtype=float)
    p = np.asarray(probabilities, dtype=float)
    scores = np.clip(np.rint(p * 100), 0, 100).astype(int)
    rows = []
    for low in range(0, 100, width):
        high = low + width - 1 if low + width < 100 else 100
        mask = (scores >= low) & (scores <= high)
        n = int(mask.sum())
        rows.append(CalibrationRow(
            band=f"{low}-{high}", low=low, high=high, count=n,
            mean_predicted=float(p[mask].mean()) if n else None,
            actual=float(y[mask].mean()) if n else None,
        ))
    return rows


def expected_calibration_error(labels, probabilities, width: int = 10) -> float:
    """Average |predicted - actual| over the score bands, weighted by how many contacts each holds."""
    rows = calibration_table(labels, probabilities, width)
    total = sum(r.count for r in rows)
    if not total:
        return float("nan")
    return sum(r.count * abs(r.mean_predicted - r.actual) for r in rows if r.count) / total
