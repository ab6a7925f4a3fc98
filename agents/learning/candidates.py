"""The models the lead scorer chooses among, each fitted on the same vectorised rows.

Ordered from the simplest to the most flexible; `simplicity` is that order, and the selection
falls back along it. Each candidate comes in two variants when some features drift with time
(`agents.learning.drift`): with every feature, and without the drifting ones ("stable").

    lr_strong   logistic regression, strong L2 (C=0.03): few, large effects
    lr_medium   logistic regression, C=0.3
    plain_lr    logistic regression on one-hot + scaled fields, C=1: the quality bar's baseline
    trees       scikit-learn's HistGradientBoosting: interactions and thresholds a line misses

A fitted model gives raw log-odds (`raw`) and per-feature contributions for one row
(`contributions`): for a line these are exact (coef x distance from the average row); for the
trees, how far the log-odds fall when that feature's columns are set to the average row's.
"""
from __future__ import annotations

import base64
import io
import pickle
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import sklearn
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from agents.learning.vectorize import Vectorizer


@dataclass(frozen=True)
class Candidate:
    name: str
    words: str                       # what a manager reads: "gradient-boosted trees"
    kind: Literal["linear", "trees"]
    simplicity: int                  # lower is simpler; ties broken by `stable` first
    c: float | None = None
    stable: bool = False             # fitted without the features that drift with time

    @property
    def key(self) -> str:
        return f"{self.name}_stable" if self.stable else self.name

    @property
    def label(self) -> str:
        return f"{self.words}, without the features that drift over time" if self.stable else self.words


BASE_CANDIDATES = (
    Candidate("lr_strong", "logistic regression (strong regularisation)", "linear", 1, c=0.03),
    Candidate("lr_medium", "logistic regression", "linear", 2, c=0.3),
    Candidate("plain_lr", "plain logistic regression (one-hot + scaled fields)", "linear", 3, c=1.0),
    Candidate("trees", "gradient-boosted trees", "trees", 4),
)
PLAIN = "plain_lr"


def candidates(with_stable_variants: bool) -> list[Candidate]:
    out: list[Candidate] = []
    for cand in BASE_CANDIDATES:
        if with_stable_variants:
            out.append(Candidate(cand.name, cand.words, cand.kind, cand.simplicity, cand.c, stable=True))
        out.append(cand)
    return out


@dataclass
class LinearModel:
    coef: np.ndarray
    intercept: float

    def raw(self, x: sparse.spmatrix | np.ndarray) -> np.ndarray:
        return np.asarray(x @ self.coef + self.intercept, dtype=float).ravel()

    def contributions(self, x_row: np.ndarray, means: np.ndarray) -> np.ndarray:
        return self.coef * (x_row - means)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "linear", "coef": self.coef.tolist(), "intercept": self.intercept}


@dataclass
class TreeModel:
    estimator: HistGradientBoostingClassifier

    def raw(self, x: sparse.spmatrix | np.ndarray) -> np.ndarray:
        dense = x.toarray() if sparse.issparse(x) else np.asarray(x)
        with threadpool_limits(limits=1, user_api="openmp"):
            return np.asarray(self.estimator.decision_function(dense), dtype=float).ravel()

    def contributions(self, x_row: np.ndarray, means: np.ndarray) -> np.ndarray:
        """Per column group handled by the caller: here, one column at a time set to its mean."""
        n = len(x_row)
        batch = np.tile(x_row, (n + 1, 1))
        idx = np.arange(n)
        batch[idx + 1, idx] = means
        raw = self.raw(batch)
        return raw[0] - raw[1:]

    def to_dict(self) -> dict[str, Any]:
        buffer = io.BytesIO()
        pickle.dump(self.estimator, buffer)
        return {"kind": "trees", "sklearn": sklearn.__version__, "estimator": base64.b64encode(buffer.getvalue()).decode()}


Model = LinearModel | TreeModel


def model_from_dict(data: dict[str, Any]) -> Model:
    if data["kind"] == "linear":
        return LinearModel(np.asarray(data["coef"], dtype=float), float(data["intercept"]))
    if data.get("sklearn") != sklearn.__version__:
        # A pickled estimator is only trusted by the library version that wrote it: relearn instead.
        raise ValueError(f"trees stored by scikit-learn {data.get('sklearn')}, running {sklearn.__version__}")
    # The blob was written by this process's own learn step into the team's own store.
    return TreeModel(pickle.loads(base64.b64decode(data["estimator"])))  # noqa: S301


def fit(cand: Candidate, rows: list[dict[str, Any]], y: np.ndarray, w: np.ndarray,
        exclude: set[str]) -> tuple[Vectorizer, Model, sparse.csr_matrix]:
    vec = Vectorizer().fit(rows, exclude=exclude)
    x = vec.transform(rows)
    if cand.kind == "linear":
        lr = LogisticRegression(C=cand.c, max_iter=1000, tol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter on tiny books; the folds judge the result
            lr.fit(x, y, sample_weight=w)
        return vec, LinearModel(lr.coef_[0].astype(float), float(lr.intercept_[0])), x
    trees = HistGradientBoostingClassifier(
        max_iter=120, learning_rate=0.08, max_leaf_nodes=15, min_samples_leaf=max(20, len(y) // 200),
        l2_regularization=1.0, early_stopping=False, random_state=0,
    )
    # One thread: OpenMP workers spin while waiting, and on a machine shared with the dashboard and
    # the scheduler they made a fit hundreds of times slower, not faster.
    with threadpool_limits(limits=1, user_api="openmp"):
        trees.fit(x.toarray(), y, sample_weight=w)
    return vec, TreeModel(trees), x
