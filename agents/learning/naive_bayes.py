"""The baseline: naive Bayes in the manner of Odoo's predictive lead scoring.

For each field, how often each value occurs among won and among lost contacts, Laplace-smoothed;
a contact's chance is P(won)·Π P(value|won) against P(lost)·Π P(value|lost). Numbers are cut
into quantile bins learned from the training rows, a missing value is a value of its own.
Like Odoo it reads the fields the store holds on a contact (store columns and custom
attributes), not derived figures, and it assumes the fields independent: that is what the
learned scorer has to beat.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.learning.features import ENGAGEMENT_FEATURES

MISSING = "__missing__"
BINS = 5
# Derived from the activity log or from other contacts' outcomes: not fields Odoo would count.
NOT_FIELDS = frozenset({*ENGAGEMENT_FEATURES, "age_days", "stage_logged", "similar_source_lift_90d", "similar_industry_lift_90d"})


def store_fields(rows: Iterable[dict[str, Any]]) -> list[str]:
    """The contact's own fields that vary in `rows` (a field with one value for all says nothing)."""
    rows = list(rows)
    names = {k for row in rows for k in row} - NOT_FIELDS
    values: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        for k in names:
            if len(values[k]) < 2:
                values[k].add(repr(row.get(k)))
    return sorted(k for k in names if len(values[k]) > 1)


@dataclass
class NaiveBayes:
    fields: list[str]
    alpha: float = 1.0
    prior_won: float = 0.5
    edges: dict[str, list[float]] = field(default_factory=dict)            # numeric field -> bin edges
    counts: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)  # field -> value -> (won, lost)
    totals: tuple[float, float] = (0.0, 0.0)

    def _value(self, name: str, raw: Any) -> str:
        if raw is None:
            return MISSING
        edges = self.edges.get(name)
        if edges is not None:
            try:
                return f"bin{int(np.searchsorted(edges, float(raw), side='right'))}"
            except (TypeError, ValueError):
                return str(raw)
        return str(raw)

    def fit(self, rows: Sequence[dict[str, Any]], labels: Sequence[int], weights: Sequence[float] | None = None) -> NaiveBayes:
        w = [1.0] * len(rows) if weights is None else list(weights)
        for name in self.fields:
            present = [row.get(name) for row in rows if row.get(name) is not None]
            if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
                qs = np.unique(np.quantile(np.asarray(present, dtype=float), np.linspace(0, 1, BINS + 1)[1:-1]))
                self.edges[name] = [float(q) for q in qs]
        table: dict[str, dict[str, list[float]]] = {n: defaultdict(lambda: [0.0, 0.0]) for n in self.fields}
        won_total = lost_total = 0.0
        for row, y, wt in zip(rows, labels, w):
            slot = 0 if y else 1
            if y:
                won_total += wt
            else:
                lost_total += wt
            for name in self.fields:
                table[name][self._value(name, row.get(name))][slot] += wt
        self.counts = {n: {v: (c[0], c[1]) for v, c in vals.items()} for n, vals in table.items()}
        self.totals = (won_total, lost_total)
        total = won_total + lost_total
        self.prior_won = won_total / total if total else 0.5
        return self

    def predict_proba(self, rows: Sequence[dict[str, Any]]) -> np.ndarray:
        won_total, lost_total = self.totals
        p = min(max(self.prior_won, 1e-6), 1 - 1e-6)
        out = np.empty(len(rows))
        for i, row in enumerate(rows):
            s = math.log(p) - math.log(1 - p)
            for name in self.fields:
                values = self.counts.get(name, {})
                k = len(values) + 1  # the values seen, plus room for one never seen
                won, lost = values.get(self._value(name, row.get(name)), (0.0, 0.0))
                s += math.log((won + self.alpha) / (won_total + self.alpha * k))
                s -= math.log((lost + self.alpha) / (lost_total + self.alpha * k))
            out[i] = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, s))))
        return out
