"""Platt scaling: a learned log-odds -> a probability that matches how often contacts converted.

Fitted on a hold-out the model never trained on, so "scored 70" means "about 70 % of such
contacts converted" in the most recent history rather than in the data the model memorised.
A light L2 keeps two parameters sane on a small hold-out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


MIN_SLOPE = 0.1
MAX_SLOPE = 10.0  # steeper means the hold-out separates perfectly on a few values: not a calibration


@dataclass(frozen=True)
class Platt:
    slope: float = 1.0
    intercept: float = 0.0

    def __call__(self, log_odds):
        return sigmoid(self.slope * np.asarray(log_odds, dtype=float) + self.intercept)

    def log_odds(self, raw):
        return self.slope * np.asarray(raw, dtype=float) + self.intercept

    @classmethod
    def fit(cls, log_odds, labels, weights=None, l2: float = 1.0) -> Platt:
        """Newton's method on the weighted logistic loss of (a·x + b)."""
        x = np.asarray(log_odds, dtype=float)
        y = np.asarray(labels, dtype=float)
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
        # Platt's own smoothed targets: a hold-out with no errors must not give infinite slopes.
        n_pos, n_neg = w[y == 1].sum(), w[y == 0].sum()
        t = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
        a, b = 1.0, 0.0
        for _ in range(100):
            if not (np.isfinite(a) and np.isfinite(b)) or abs(a) > 1e3:
                break
            p = sigmoid(a * x + b)
            g = np.array([np.sum(w * (p - t) * x) + l2 * (a - 1), np.sum(w * (p - t))])
            s = w * p * (1 - p)
            h = np.array([[np.sum(s * x * x) + l2, np.sum(s * x)], [np.sum(s * x), np.sum(s) + 1e-9]])
            try:
                step = np.linalg.solve(h, g)
            except np.linalg.LinAlgError:
                break
            a, b = a - step[0], b - step[1]
            if np.max(np.abs(step)) < 1e-9:
                break
        if not np.isfinite(a) or not np.isfinite(b) or not MIN_SLOPE <= a <= MAX_SLOPE:
            # A hold-out on which the model barely ranks (or ranks backwards) would flatten every
            # score into one: keep the learned order and fit only the level.
            a, b = 1.0, _intercept_only(x, t, w)
        return cls(float(a), float(b))


def _intercept_only(x, t, w) -> float:
    """The shift b at which the average of sigmoid(x + b) matches the targets' (bisection: it cannot diverge)."""
    goal = float(np.average(t, weights=w))
    lo, hi = -50.0, 50.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if np.average(sigmoid(x + mid), weights=w) < goal:
            lo = mid
        else:
            hi = mid
    return float((lo + hi) / 2)
