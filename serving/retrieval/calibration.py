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

Where the real answerable questions come with their answers (the clauses an official reply
cites), the same data first picks the reranker's dense prior (``tune_dense_prior``): the graph's
own questions share their clause's words and teach the reranker to trust word overlap, while real
letters ask in their own words. One number from a short grid, chosen by leave-one-out, so the
letters steer the ranking without the ranking memorizing them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from kgqa.errors import ConfigError
from serving.retrieval.features import (
    ANSWERABILITY_FEATURES,
    ANSWERABILITY_SIGNS,
    CANDIDATE_FEATURES,
    CandidateScorer,
    Signals,
)
from serving.retrieval.rerank import LinearModel, RetrievalModel

CALIBRATION_FEATURES = ("ask_domain", "top_dense", "top_quantity_gap", "named")

DENSE_PRIORS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0)
"""The values of ``RetrievalModel.dense_prior`` ``tune_dense_prior`` tries."""


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


@dataclass
class Asked:
    """One question through the first stage: its signals, reranker pool and candidate features.

    None of it depends on the model's weights or priors, so one pass serves both the dense prior's
    tuning and the answerability features computed after it."""

    signals: Signals
    ids: list[str]
    matrix: np.ndarray


def ask_all(retriever, questions: Sequence[str]) -> list[Asked]:  # noqa: ANN001 - HybridRetriever
    """Each question through the retriever's own first stage (the expensive part: dense encoding,
    BM25, full-text), once."""
    scorer = CandidateScorer(retriever.store.current())
    out = []
    for q in questions:
        _, signals = retriever.signals(q)
        ids, matrix = scorer.features(signals, retriever.pool(signals))
        out.append(Asked(signals, ids, matrix))
    return out


def question_features(retriever, asked: Sequence[Asked]) -> np.ndarray:  # noqa: ANN001 - HybridRetriever
    """``ANSWERABILITY_FEATURES`` rows for each asked question, scored by the retriever's model now."""
    scorer = CandidateScorer(retriever.store.current())
    rows = [
        scorer.answerability(a.signals, a.ids, a.matrix, retriever.model.scores(a.matrix, CANDIDATE_FEATURES))
        for a in asked
    ]
    return np.vstack(rows) if rows else np.zeros((0, len(ANSWERABILITY_FEATURES)))


@dataclass
class DensePriorChoice:
    """The dense prior picked on real questions, and what each value scored.

    Attributes:
        value: the prior picked on all questions (best mean reciprocal rank; the smallest of equals).
        questions: how many questions with known answers it was picked on.
        mrr: grid value -> mean reciprocal rank of the answers over all questions.
        loo_mrr: mean reciprocal rank when each question's prior is picked on the others.
        loo_values: the priors the leave-one-out picks chose (how stable the choice is).
    """

    value: float
    questions: int
    mrr: dict[float, float]
    loo_mrr: float
    loo_values: list[float]


def tune_dense_prior(
    model: RetrievalModel,
    asked: Sequence[Asked],
    answers: Sequence[Sequence[frozenset[str]]],
    grid: Sequence[float] = DENSE_PRIORS,
) -> DensePriorChoice:
    """Pick ``model.dense_prior`` on real questions whose answers are known.

    Args:
        model: the retrieval model (its reranker and pool prior stay as they are).
        asked: the questions through the first stage (``ask_all``).
        answers: per question, the clause sets an answer should find first, e.g. the articles the
            official reply cites and all clauses of the standards it cites; each set scores the
            reciprocal rank of its first clause in the final order (0 when absent from the pool).
        grid: the values tried.
    """
    if len(asked) != len(answers):
        raise ConfigError(f"{len(asked)} questions but {len(answers)} answer lists")
    usable = [(q, a) for q, a in zip(asked, answers, strict=True) if any(a)]
    if len(usable) < 5:
        raise ConfigError("tuning the dense prior needs at least 5 questions with known answers")
    scores = np.zeros((len(grid), len(usable)))
    for g, value in enumerate(grid):
        scorer = replace(model, dense_prior=float(value)).scores_fn()
        for q, (a, sets) in enumerate(usable):
            order = [a.ids[i] for i in np.argsort(-scorer(a.matrix), kind="stable")] if len(a.ids) else []
            scores[g, q] = np.mean([_reciprocal_rank(order, s) for s in sets if s])

    # best mean; among equals the smallest prior (the reranker as trained)
    def pick(columns: np.ndarray) -> int:
        means = scores[:, columns].mean(axis=1)
        return int(np.flatnonzero(np.isclose(means, means.max()))[0])

    everyone = np.arange(len(usable))
    loo = [pick(everyone[everyone != q]) for q in everyone]
    return DensePriorChoice(
        value=float(grid[pick(everyone)]),
        questions=len(usable),
        mrr={float(v): round(float(scores[g].mean()), 4) for g, v in enumerate(grid)},
        loo_mrr=round(float(np.mean([scores[g, q] for q, g in enumerate(loo)])), 4),
        loo_values=sorted({float(grid[g]) for g in loo}),
    )


def gold_answer_sets(gold: Iterable[str], clause_ids: Iterable[str]) -> list[frozenset[str]]:
    """``tune_dense_prior``'s answers for a question whose official answer cites ``gold``: those
    clauses, and every clause of their documents (a clause id starts with its document's id)."""
    wanted = frozenset(gold)
    docs = {c.split("/", 1)[0] for c in wanted}
    return [wanted, frozenset(c for c in clause_ids if c.split("/", 1)[0] in docs)]


def _reciprocal_rank(order: Sequence[str], answer: frozenset[str]) -> float:
    return next((1.0 / (i + 1) for i, c in enumerate(order) if c in answer), 0.0)


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


def calibrate_model(
    retriever,  # noqa: ANN001 - HybridRetriever
    questions: Sequence[str],
    answerable: Sequence[bool],
    answers: Sequence[Sequence[frozenset[str]]],
    *,
    max_answerable_refused: float = 0.05,
) -> tuple[DensePriorChoice | None, Calibration]:
    """The whole recipe on labelled real questions, applied to ``retriever.model`` in place.

    Each question goes through the first stage once (``ask_all``). Where answerable questions come
    with the clause sets their answer should find (``answers``; an empty list where unknown), the
    dense prior is tuned on them first; the answerability features are then read under that prior
    (the top candidate may have moved) and refusal is calibrated on all questions. The model's
    ``meta`` records both choices. ``kgqa index calibrate`` and ``bench/bench_retrieval.py
    --calibrate`` both run this.

    Returns:
        The dense prior chosen (``None`` when no question came with answers) and the calibration.
    """
    if not len(questions) == len(answerable) == len(answers):
        raise ConfigError(
            f"{len(questions)} questions, {len(answerable)} labels, {len(answers)} answer lists"
        )
    model = retriever.model
    asked = ask_all(retriever, questions)
    known = [(a, sets) for a, yes, sets in zip(asked, answerable, answers, strict=True) if yes and any(sets)]
    prior = None
    if known:
        prior = tune_dense_prior(model, [a for a, _ in known], [sets for _, sets in known])
        model.dense_prior = prior.value
        model.meta["dense_prior"] = asdict(prior)
    x = question_features(retriever, asked)
    labels = np.asarray([1.0 if yes else 0.0 for yes in answerable])
    model.answerability, calibration = calibrate(x, labels, max_answerable_refused=max_answerable_refused)
    model.threshold = calibration.threshold
    model.meta["calibration"] = {k: v for k, v in asdict(calibration).items() if k != "curve"}
    return prior, calibration


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


__all__ = [
    "CALIBRATION_FEATURES",
    "DENSE_PRIORS",
    "Asked",
    "Calibration",
    "DensePriorChoice",
    "ask_all",
    "calibrate",
    "calibrate_model",
    "gold_answer_sets",
    "plot_curve",
    "question_features",
    "tune_dense_prior",
]
