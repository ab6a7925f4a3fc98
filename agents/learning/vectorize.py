"""Typed feature rows -> a sparse numeric matrix, with a vocabulary that round-trips through JSON.

Numbers are compressed with sign(x)·log(1+|x|) (counts, revenue and head-counts are skewed)
and standardised; a missing number becomes the mean plus a missing-indicator column. Text is
one-hot over the values seen at least `min_count` times; rarer values share an "other" column
when together they are that frequent, else they get no column (the baseline).
Which kind a feature is comes from the training rows: a feature whose values are all numbers is
numeric, any text makes it categorical.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

MISSING = "__missing__"
OTHER = "__other__"


def _compress(x: float) -> float:
    return math.copysign(math.log1p(abs(x)), x)


@dataclass
class NumericSpec:
    mean: float
    std: float
    missing_column: bool  # whether the training rows had missing values


@dataclass
class Vectorizer:
    min_count: int = 3
    numeric: dict[str, NumericSpec] = field(default_factory=dict)
    categorical: dict[str, list[str]] = field(default_factory=dict)  # kept values (may include MISSING, OTHER)
    columns: list[tuple[str, str]] = field(default_factory=list)      # (feature, column label)

    def fit(self, rows: Sequence[dict[str, Any]], exclude: set[str] | None = None) -> Vectorizer:
        exclude = exclude or set()
        names = sorted({k for row in rows for k in row} - exclude)
        n = len(rows)
        for name in names:
            values = [row.get(name) for row in rows]
            present = [v for v in values if v is not None]
            if not present:
                continue
            if all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
                xs = np.array([_compress(float(v)) for v in present])
                std = float(xs.std())
                has_missing = len(present) < n
                if std > 1e-12 or has_missing:
                    self.numeric[name] = NumericSpec(float(xs.mean()), std if std > 1e-12 else 1.0, has_missing)
            else:
                counts = Counter(MISSING if v is None else str(v) for v in values)
                kept = sorted(v for v, c in counts.items() if c >= self.min_count)
                if n - sum(counts[v] for v in kept) >= self.min_count:  # rare values pooled, if enough of them
                    kept.append(OTHER)
                if len(kept) > 1:
                    self.categorical[name] = kept
        for name, spec in self.numeric.items():
            self.columns.append((name, name))
            if spec.missing_column:
                self.columns.append((name, f"{name} missing"))
        for name, kept in self.categorical.items():
            self.columns.extend((name, f"{name} = {v}") for v in kept)
        self._index()
        return self

    def _index(self) -> None:
        self._col = {label: i for i, (_, label) in enumerate(self.columns)}

    @property
    def features(self) -> list[str]:
        return sorted({f for f, _ in self.columns})

    def _row_entries(self, row: dict[str, Any]) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        col = self._col
        for name, spec in self.numeric.items():
            v = row.get(name)
            if isinstance(v, bool):
                v = float(v)
            if isinstance(v, int | float) and math.isfinite(float(v)):
                z = (_compress(float(v)) - spec.mean) / spec.std
                if z:
                    out.append((col[name], z))
            elif spec.missing_column:
                out.append((col[f"{name} missing"], 1.0))
            # text where a number was learned: treated as missing (mean), there is no column for it
        for name, kept in self.categorical.items():
            v = row.get(name)
            value = MISSING if v is None else str(v)
            if value not in kept:
                value = OTHER if OTHER in kept else None
            if value is not None:
                out.append((col[f"{name} = {value}"], 1.0))
        return out

    def typical_numbers(self, column_means: Sequence[float]) -> dict[str, float]:
        """Numeric feature -> the value at its column's mean, back in the feature's own units: the
        typical lead a contribution is measured against (the mean of the compressed values, so for
        skewed counts it sits below the plain average)."""
        means = {label: float(m) for (_, label), m in zip(self.columns, column_means)}
        out = {}
        for name, spec in self.numeric.items():
            c = spec.mean + spec.std * means[name]
            out[name] = math.copysign(math.expm1(abs(c)), c)
        return out

    def transform(self, rows: Sequence[dict[str, Any]]) -> sparse.csr_matrix:
        data: list[float] = []
        indices: list[int] = []
        indptr = [0]
        for row in rows:
            for j, v in self._row_entries(row):
                indices.append(j)
                data.append(v)
            indptr.append(len(indices))
        return sparse.csr_matrix((data, indices, indptr), shape=(len(rows), len(self.columns)), dtype=float)

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_count": self.min_count,
            "numeric": {k: [s.mean, s.std, s.missing_column] for k, s in self.numeric.items()},
            "categorical": self.categorical,
            "columns": [list(c) for c in self.columns],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vectorizer:
        v = cls(min_count=int(data["min_count"]))
        v.numeric = {k: NumericSpec(float(m), float(s), bool(miss)) for k, (m, s, miss) in data["numeric"].items()}
        v.categorical = {k: list(vals) for k, vals in data["categorical"].items()}
        v.columns = [(f, label) for f, label in data["columns"]]
        v._index()
        return v
