"""The second stage's learned parts: a clause reranker and an answerability model.

Both are logistic regressions over a few features that see the whole question (serving/retrieval/
features.py). They are learned from questions the graph itself generates (the dataset builder's
question -> clause pairs; ``kgqa index train``), not from the letters we evaluate on, and they are
small enough to read: a JSON file of feature names, standardization and weights.

- The **reranker** scores each fused candidate: P(this clause answers the question).
- The **answerability model** scores the question given its reranked candidates: P(the manuals
  answer it). The service refuses below ``threshold``, an operating point picked on the curve that
  ``bench/bench_retrieval.py --calibrate`` plots from answerable and unanswerable letters.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kgqa.errors import ConfigError

PACKAGED_MODEL = Path(__file__).with_name("model.json")
"""The model shipped with kgqa: learned by ``kgqa index train`` on the 42 accounting standards."""

FORMAT = 1

DENSE_FLOOR = 1.0 / 64
"""The reciprocal dense rank of a candidate the dense ranking did not return (its depth is 50):
ranked just past it, so ``dense_prior`` lowers it by a bounded amount rather than to minus infinity."""


@dataclass
class LinearModel:
    """A standardized logistic regression: ``p = σ(coef · (x - mean) / scale + intercept)``."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise ConfigError(f"linear model has {n} features but {len(self.coef)} weights")
        self._mean = np.asarray(self.mean, dtype=np.float64)
        self._scale = np.asarray(self.scale, dtype=np.float64)
        self._coef = np.asarray(self.coef, dtype=np.float64)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Log-odds for each row of ``x`` (rows are feature vectors in ``features`` order)."""
        if x.size == 0:
            return np.zeros(0)
        return ((x - self._mean) / self._scale) @ self._coef + self.intercept

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(x)))

    def columns(self, names: Sequence[str]) -> list[int]:
        """Positions of this model's features in rows whose columns are ``names``."""
        try:
            return [list(names).index(f) for f in self.features]
        except ValueError as exc:
            raise ConfigError(f"the model uses a feature this kgqa does not compute: {exc}") from exc

    @classmethod
    def fit(
        cls,
        features: Sequence[str],
        x: np.ndarray,
        y: np.ndarray,
        *,
        c: float = 1.0,
        signs: Mapping[str, int] | None = None,
    ) -> LinearModel:
        """Fit an L2-regularized logistic regression on rows ``x`` with 0/1 labels ``y``.

        Args:
            features: the names of ``x``'s columns.
            x: feature rows.
            y: labels.
            c: inverse regularization strength (scikit-learn's ``C``).
            signs: feature -> +1 or -1 for weights whose direction is known (a closer candidate
                never makes a question *less* answerable). Training questions are generated, not
                real, and correlated features trade weight freely; bounding the signs keeps what
                is learned true of real questions too.
        """
        if len(set(y.tolist())) < 2:
            raise ConfigError("training data has only one class; generate more questions")
        mean, scale = _standardization(x)
        w, b = _logistic((x - mean) / scale, y, c, _bounds(features, signs), intercept=True)
        return cls(
            list(features), mean.round(6).tolist(), scale.round(6).tolist(), w.round(6).tolist(), round(b, 6)
        )

    @classmethod
    def fit_pairwise(
        cls,
        features: Sequence[str],
        groups: Sequence[tuple[np.ndarray, np.ndarray]],
        *,
        negatives: int = 15,
        c: float = 1.0,
        signs: Mapping[str, int] | None = None,
    ) -> LinearModel:
        """Fit a ranking: within each question, a gold candidate should outscore the others.

        Each group is one question's candidate matrix (pool order) and 0/1 labels. Every gold row
        is paired with the first ``negatives`` non-gold rows (the hardest: the pool ranked them
        high); a logistic regression without intercept learns from the differences. Pointwise
        training would spend its weights telling the 49 easy negatives of a question apart from
        each other; a reranker only has to order the few that compete.
        """
        usable = [(x, y) for x, y in groups if len(y) and 0 < y.sum() < len(y)]
        if not usable:
            raise ConfigError("no question has both a gold and another candidate in its pool")
        mean, scale = _standardization(np.vstack([x for x, _ in usable]))
        diffs = []
        for x, y in usable:
            z = (x - mean) / scale
            gold = z[y > 0]
            other = z[y <= 0][:negatives]
            diffs.append((gold[:, None, :] - other[None, :, :]).reshape(-1, z.shape[1]))
        d = np.vstack(diffs)
        pairs = np.vstack([d, -d])
        labels = np.concatenate([np.ones(len(d)), np.zeros(len(d))])
        w, _ = _logistic(pairs, labels, c, _bounds(features, signs), intercept=False)
        return cls(list(features), mean.round(6).tolist(), scale.round(6).tolist(), w.round(6).tolist(), 0.0)

    def weights(self) -> dict[str, float]:
        """Feature -> standardized weight, largest magnitude first (for reports)."""
        pairs = sorted(zip(self.features, self.coef, strict=True), key=lambda p: -abs(p[1]))
        return {name: round(w, 3) for name, w in pairs}


@dataclass
class RetrievalModel:
    """Reranker, answerability model and the refusal threshold, saved together.

    Attributes:
        reranker: P(candidate answers the question) from candidate features.
        answerability: P(the manuals answer the question) from the top candidates' features.
        threshold: refuse when answerability is below this (``None`` = never refuse).
        meta: how it was learned (graph version, question counts, held-out scores).
        pool_prior: how much of the first stage's order the final score keeps (see ``scores``).
        dense_prior: how much of the dense ranking's order the final score keeps (see ``scores``).
    """

    reranker: LinearModel
    answerability: LinearModel
    threshold: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    pool_prior: float = 0.0
    dense_prior: float = 0.0

    def scores(self, matrix: np.ndarray, features: Sequence[str]) -> np.ndarray:
        """Candidate scores: the reranker's log-odds plus ``pool_prior`` × log of the reciprocal
        of the candidate's place in the first stage's pool, plus ``dense_prior`` × log of the
        reciprocal of its place in the dense ranking.

        The reranker corrects the first stage rather than replacing it: where every first-stage
        ranking agrees (a tidy question), their order is evidence the features do not carry.
        How much to keep is learned with the reranker (``training.train`` picks it on held-out
        questions). The dense prior is the one thing the graph's own questions cannot teach: they
        share their clause's words, so the reranker learns to trust word overlap, while real
        letters ask in their own words, where the dense order is the better guide. It is picked
        on real questions with known answers (``calibration.tune_dense_prior``).
        """
        # the model's own columns: a model learned before a feature was added still scores
        logits = self.reranker.logits(matrix[:, self.reranker.columns(features)])
        if self.pool_prior and len(matrix):
            logits = logits + self.pool_prior * np.log(matrix[:, list(features).index("rr_fused")])
        if self.dense_prior and len(matrix):
            dense = np.maximum(matrix[:, list(features).index("rr_dense")], DENSE_FLOOR)
            logits = logits + self.dense_prior * np.log(dense)
        return logits

    def scores_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """``scores`` over rows in ``CANDIDATE_FEATURES`` order (the trainer's shorthand)."""
        from serving.retrieval.features import CANDIDATE_FEATURES

        return lambda matrix: self.scores(matrix, CANDIDATE_FEATURES)

    def to_dict(self) -> dict[str, Any]:
        def linear(m: LinearModel) -> dict[str, Any]:
            return {k: getattr(m, k) for k in ("features", "mean", "scale", "coef", "intercept")}

        return {
            "format": FORMAT,
            "reranker": linear(self.reranker),
            "answerability": linear(self.answerability),
            "threshold": self.threshold,
            "pool_prior": self.pool_prior,
            "dense_prior": self.dense_prior,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrievalModel:
        if data.get("format") != FORMAT:
            raise ConfigError(f"retrieval model format {data.get('format')} is not {FORMAT}; retrain it")
        return cls(
            LinearModel(**data["reranker"]),
            LinearModel(**data["answerability"]),
            data.get("threshold"),
            dict(data.get("meta") or {}),
            float(data.get("pool_prior") or 0.0),
            float(data.get("dense_prior") or 0.0),
        )

    def save(self, path: Path) -> None:
        """Write atomically, so a serving process never reads half a model."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RetrievalModel:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"cannot read the retrieval model {path}: {exc}") from exc


def model_path(home: Path) -> Path:
    """Where ``kgqa index train`` writes the model learned on this graph."""
    return Path(home) / "retrieval" / "model.json"


def load_model(home: Path | None, override: Path | None = None) -> RetrievalModel:
    """The model to serve with: ``override``, else the one learned under ``home``, else the packaged one."""
    for path in (override, model_path(home) if home else None, PACKAGED_MODEL):
        if path is not None and Path(path).is_file():
            return RetrievalModel.load(Path(path))
    raise ConfigError(f"no retrieval model at {PACKAGED_MODEL}; run `kgqa index train`")


def _standardization(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


def _bounds(
    features: Sequence[str], signs: Mapping[str, int] | None
) -> list[tuple[float | None, float | None]]:
    signs = signs or {}
    return [
        (0.0, None) if signs.get(f, 0) > 0 else (None, 0.0) if signs.get(f, 0) < 0 else (None, None)
        for f in features
    ]


def _logistic(
    z: np.ndarray,
    y: np.ndarray,
    c: float,
    bounds: list[tuple[float | None, float | None]],
    *,
    intercept: bool,
) -> tuple[np.ndarray, float]:
    """L2-regularized logistic regression with box bounds on the weights (L-BFGS-B)."""
    from scipy.optimize import minimize

    d = z.shape[1]
    target = 2.0 * y - 1.0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        b = w[d] if intercept else 0.0
        margin = target * (z @ w[:d] + b)
        value = np.logaddexp(0.0, -margin).sum() + 0.5 / c * (w[:d] @ w[:d])
        sig = -target / (1.0 + np.exp(margin))
        grad = z.T @ sig + w[:d] / c
        return float(value), np.concatenate([grad, [sig.sum()]]) if intercept else grad

    start = np.zeros(d + 1 if intercept else d)
    result = minimize(
        loss, start, jac=True, method="L-BFGS-B", bounds=bounds + ([(None, None)] if intercept else [])
    )
    return result.x[:d], float(result.x[d]) if intercept else 0.0


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


__all__ = ["PACKAGED_MODEL", "LinearModel", "RetrievalModel", "load_model", "model_path", "sigmoid"]
