"""Calibrating refusal on real questions: the answerability decision and its operating point.

``kgqa index train`` learns the reranker from the graph's own questions, and an answerability
model from them too; but a question the graph generates is never really unanswerable, and the
documents it hides to fake silence still speak the manuals' language. Real unanswerable questions
do not: they ask another field's rules (a tax rate, a labour-law period) in that field's words.
So the refusal decision is calibrated on real questions, labelled answerable or not:

- a logistic regression over a few features whose direction is known (``CALIBRATION_FEATURES``:
  how much the ask speaks the manuals' language, how close the best clause is in meaning, whether
  it can give the number the ask wants, whether the letter names a standard we hold), each
  weight bounded to its sign, so a few dozen questions cannot teach it anything perverse;
- its leave-one-out probabilities trace refusal rates over every threshold; the operating point
  is the threshold that refuses the most unanswerable questions while refusing at most
  ``max_answerable_refused`` of the answerable ones (read off that curve, not set by hand).

The features do not use the reranker's scale, so retraining the reranker keeps the calibration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kgqa.errors import ConfigError
from serving.retrieval.features import (
    ANSWERABILITY_FEATURES,
    ANSWERABILITY_SIGNS,
    CANDIDATE_FEATURES,
    CandidateScorer,
)
from serving.retrieval.rerank import LinearModel

CALIBRATION_FEATURES = ("ask_domain", "top_dense", "top_quantity_gap", "named")


@dataclass
class Calibration:
    """The operating point and the curve it was read from.

    Attributes:
        threshold: refuse below this answerability.
        answerable_refused: share of answerable questions refused at the threshold (leave-one-out).
        unanswerable_refused: share of unanswerable questions refused there (leave-one-out).
        in_sample: the same two rates for the model fitted on all questions.
        answerable / unanswerable: how many questions of each kind.
        curve: ``(threshold, answerable_refused, unanswerable_refused)`` over every threshold.
        weights: the fitted model's standardized weights.
    """

    threshold: float
    answerable_refused: float
    unanswerable_refused: float
    in_sample: dict[str, float]
    answerable: int
    unanswerable: int
    curve: list[tuple[float, float, float]] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)


def question_features(retriever, questions: Sequence[str]) -> np.ndarray:  # noqa: ANN001 - HybridRetriever
    """``ANSWERABILITY_FEATURES`` rows for each question, through the retriever's own stages."""
    scorer = CandidateScorer(retriever.store.current())
    rows = []
    for q in questions:
        _, signals = retriever.signals(q)
        ids, matrix = scorer.features(signals, retriever.pool(signals))
        scores = retriever.model.scores(matrix, CANDIDATE_FEATURES)
        rows.append(scorer.answerability(signals, ids, matrix, scores))
    return np.vstack(rows) if rows else np.zeros((0, len(ANSWERABILITY_FEATURES)))


def calibrate(
    x: np.ndarray,
    answerable: np.ndarray,
    *,
    max_answerable_refused: float = 0.05,
    c: float = 0.1,
    features: Sequence[str] = CALIBRATION_FEATURES,
) -> tuple[LinearModel, Calibration]:
    """Fit the answerability model on labelled real questions and pick its threshold.

    Args:
        x: ``ANSWERABILITY_FEATURES`` rows (``question_features``).
        answerable: 1 for an answerable question, 0 for one the manuals do not answer.
        max_answerable_refused: the refusal budget for answerable questions.
        c: inverse L2 regularization.
        features: the columns the model uses.
    """
    y = np.asarray(answerable, dtype=np.float64)
    if y.sum() < 5 or (1 - y).sum() < 5:
        raise ConfigError("calibration needs at least 5 answerable and 5 unanswerable questions")
    cols = [ANSWERABILITY_FEATURES.index(f) for f in features]
    z = x[:, cols]
    loo = np.zeros(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        model = LinearModel.fit(features, z[keep], y[keep], c=c, signs=ANSWERABILITY_SIGNS)
        loo[i] = model.probabilities(z[i : i + 1])[0]
    model = LinearModel.fit(features, z, y, c=c, signs=ANSWERABILITY_SIGNS)
    curve = _curve(loo, y)
    ok = [p for p in curve if p[1] <= max_answerable_refused]
    threshold, ans_refused, una_refused = max(ok, key=lambda p: (p[2], -p[0])) if ok else (0.0, 0.0, 0.0)
    fitted = model.probabilities(z)
    in_sample = {
        "answerable_refused": round(float((fitted[y == 1] < threshold).mean()), 3),
        "unanswerable_refused": round(float((fitted[y == 0] < threshold).mean()), 3),
    }
    return model, Calibration(
        threshold=round(float(threshold), 4),
        answerable_refused=round(ans_refused, 3),
        unanswerable_refused=round(una_refused, 3),
        in_sample=in_sample,
        answerable=int(y.sum()),
        unanswerable=int((1 - y).sum()),
        curve=curve,
        weights=model.weights(),
    )


def _curve(p: np.ndarray, y: np.ndarray) -> list[tuple[float, float, float]]:
    """Refusal rates of both kinds when refusing below each observed score (and 0)."""
    out = []
    for t in np.unique(np.concatenate([[0.0], p])):
        out.append(
            (float(t), round(float((p[y == 1] < t).mean()), 4), round(float((p[y == 0] < t).mean()), 4))
        )
    return out


def plot_curve(calibration: Calibration, path, title: str = "") -> None:  # noqa: ANN001 - Path
    """The refusal curve with the operating point, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [p[0] for p in calibration.curve]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.step(
        t,
        [p[1] for p in calibration.curve],
        where="post",
        label=f"answerable refused (n={calibration.answerable})",
    )
    ax.step(
        t,
        [p[2] for p in calibration.curve],
        where="post",
        label=f"unanswerable refused (n={calibration.unanswerable})",
    )
    ax.axvline(
        calibration.threshold,
        color="grey",
        linestyle="--",
        label=f"operating point {calibration.threshold:.3f}",
    )
    ax.set_xlabel("answerability threshold (leave-one-out probabilities)")
    ax.set_ylabel("share refused")
    ax.set_title(title or "Refusal on real questions")
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["CALIBRATION_FEATURES", "Calibration", "calibrate", "plot_curve", "question_features"]
