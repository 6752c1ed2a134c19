"""The learned second stage: bounded logistic regressions, pairwise ranking, calibration, diversity."""

from __future__ import annotations

import numpy as np
import pytest

from kgqa.errors import ConfigError
from serving.retrieval.calibration import (
    CALIBRATION_FEATURES,
    Asked,
    calibrate,
    gold_answer_sets,
    tune_dense_prior,
)
from serving.retrieval.features import ANSWERABILITY_FEATURES, CANDIDATE_FEATURES, wants_quantity
from serving.retrieval.hybrid import Candidate, diversify
from serving.retrieval.rerank import PACKAGED_MODEL, LinearModel, RetrievalModel


def test_fit_learns_the_separating_direction_and_respects_signs():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 0] - 0.2 * x[:, 1] > 0).astype(float)
    free = LinearModel.fit(["a", "b"], x, y)
    assert free.coef[0] > 0 > free.coef[1]
    assert ((free.probabilities(x) > 0.5) == (y > 0)).mean() > 0.9
    bounded = LinearModel.fit(["a", "b"], x, y, signs={"b": 1})
    assert bounded.coef[1] == 0.0 and bounded.coef[0] > 0  # b may only push up: its weight stays 0


def test_pairwise_fit_ranks_the_gold_first_whatever_the_base_rate():
    rng = np.random.default_rng(1)
    groups = []
    for _ in range(60):
        x = rng.normal(size=(20, 3))
        x[:, 2] += rng.normal() * 5  # a per-question offset that says nothing about which is gold
        gold = int(rng.integers(20))
        x[gold, 0] += 2.0
        groups.append((x, np.eye(20)[gold]))
    model = LinearModel.fit_pairwise(["signal", "noise", "offset"], groups)
    assert (
        model.intercept == 0.0 and model.coef[0] > abs(model.coef[1]) and model.coef[0] > abs(model.coef[2])
    )
    top1 = np.mean([np.argmax(model.logits(x)) == np.argmax(y) for x, y in groups])
    oracle = np.mean([np.argmax(x[:, 0]) == np.argmax(y) for x, y in groups])  # the signal alone
    assert top1 >= oracle - 0.05
    with pytest.raises(ConfigError):
        LinearModel.fit_pairwise(["a"], [(np.ones((3, 1)), np.zeros(3))])


def test_model_round_trips_through_json(tmp_path):
    model = RetrievalModel.load(PACKAGED_MODEL)
    assert model.threshold is not None and "calibration" in model.meta  # the shipped model is calibrated
    model.save(tmp_path / "m.json")
    again = RetrievalModel.load(tmp_path / "m.json")
    assert again.to_dict() == model.to_dict()
    x = np.zeros((1, len(ANSWERABILITY_FEATURES)))
    cols = again.answerability.columns(ANSWERABILITY_FEATURES)
    assert again.answerability.probabilities(x[:, cols]).shape == (1,)
    (tmp_path / "bad.json").write_text('{"format": 99}', encoding="utf-8")
    with pytest.raises(ConfigError, match="retrain"):
        RetrievalModel.load(tmp_path / "bad.json")


def test_calibration_picks_the_point_that_refuses_most_unanswerable_within_budget():
    rng = np.random.default_rng(2)
    n_yes, n_no = 60, 40
    x = np.zeros((n_yes + n_no, len(ANSWERABILITY_FEATURES)))
    col = {f: ANSWERABILITY_FEATURES.index(f) for f in CALIBRATION_FEATURES}
    x[:n_yes, col["ask_domain"]] = rng.normal(4.0, 1.0, n_yes)
    x[n_yes:, col["ask_domain"]] = rng.normal(1.0, 1.0, n_no)
    x[:, col["top_dense"]] = rng.normal(0.6, 0.05, n_yes + n_no)
    y = np.asarray([1.0] * n_yes + [0.0] * n_no)
    model, cal = calibrate(x, y, max_answerable_refused=0.05)
    assert cal.answerable_refused <= 0.05 and cal.unanswerable_refused > 0.8
    assert model.weights()["ask_domain"] > 0
    assert cal.curve[0][1] == 0.0  # threshold 0 refuses nothing
    with pytest.raises(ConfigError, match="at least 5"):
        calibrate(x[:3], y[:3])


def _pool(rng, gold: int, *, dense_finds_it: bool) -> tuple[list[str], np.ndarray]:
    """A 20-candidate pool where the reranker's features favour candidate 0 and the dense ranking
    puts ``gold`` first (when ``dense_finds_it``) or ranks it like the rest."""
    matrix = np.zeros((20, len(CANDIDATE_FEATURES)))
    matrix[:, CANDIDATE_FEATURES.index("rr_fused")] = 1.0 / np.arange(1, 21)
    matrix[0, CANDIDATE_FEATURES.index("ask_cover")] = 1.0  # word overlap: the reranker's favourite
    dense = [int(i) for i in rng.permutation(20)]
    if dense_finds_it:
        dense = [gold] + [i for i in dense if i != gold]
    rr = np.zeros(20)
    rr[dense[:10]] = 1.0 / np.arange(1, 11)  # the dense ranking returned 10 of them
    matrix[:, CANDIDATE_FEATURES.index("rr_dense")] = rr
    return [f"d{i % 3}/c{i}" for i in range(20)], matrix


def _asked(rows: list[tuple[list[str], np.ndarray]]) -> list[Asked]:
    return [Asked(None, ids, matrix) for ids, matrix in rows]  # the prior never reads the signals


def _overlap_model(**priors: float) -> RetrievalModel:
    n = len(CANDIDATE_FEATURES)
    coef = [2.0 if f == "ask_cover" else 0.0 for f in CANDIDATE_FEATURES]
    reranker = LinearModel(list(CANDIDATE_FEATURES), [0.0] * n, [1.0] * n, coef, 0.0)
    return RetrievalModel(reranker, reranker, **priors)


def test_dense_prior_is_picked_where_real_answers_follow_the_dense_order():
    """The letters' answers are what the dense ranking puts first, not the word-overlap favourite."""
    rng = np.random.default_rng(3)
    gold = [int(rng.integers(1, 20)) for _ in range(12)]
    rows = [_pool(rng, g, dense_finds_it=True) for g in gold]
    answers = [[frozenset({ids[g]})] for (ids, _), g in zip(rows, gold, strict=True)]
    choice = tune_dense_prior(_overlap_model(), _asked(rows), answers)
    assert choice.value > 0 and choice.questions == 12
    assert choice.mrr[choice.value] > choice.mrr[0.0] and choice.loo_mrr > choice.mrr[0.0]
    assert choice.loo_values == [choice.value]  # every leave-one-out fold agrees
    # with the prior the gold comes first; the scores stay finite for candidates dense never returned
    model = _overlap_model(dense_prior=choice.value)
    ids, matrix = rows[0]
    scores = model.scores(matrix, CANDIDATE_FEATURES)
    assert np.isfinite(scores).all() and ids[int(np.argmax(scores))] == ids[gold[0]]


def test_dense_prior_stays_zero_where_the_reranker_is_right():
    rng = np.random.default_rng(4)
    rows = [_pool(rng, 0, dense_finds_it=False) for _ in range(10)]
    answers = [[frozenset({ids[0]}), frozenset(c for c in ids if c.startswith("d0/"))] for ids, _ in rows]
    assert tune_dense_prior(_overlap_model(), _asked(rows), answers).value == 0.0
    with pytest.raises(ConfigError, match="at least 5"):
        tune_dense_prior(_overlap_model(), _asked(rows[:4]), answers[:4])
    with pytest.raises(ConfigError, match="answer lists"):
        tune_dense_prior(_overlap_model(), _asked(rows), answers[:3])


def test_gold_answer_sets_are_the_clauses_and_their_documents():
    clauses = ["a/1", "a/2", "b/1", "c/9"]
    assert gold_answer_sets(["a/2", "c/9"], clauses) == [
        frozenset({"a/2", "c/9"}),
        frozenset({"a/1", "a/2", "c/9"}),
    ]


def test_dense_prior_round_trips_and_old_files_read_as_zero(tmp_path):
    model = _overlap_model(pool_prior=0.5, dense_prior=1.0)
    model.save(tmp_path / "m.json")
    assert RetrievalModel.load(tmp_path / "m.json").dense_prior == 1.0
    data = model.to_dict()
    del data["dense_prior"]  # a model saved before the prior existed
    assert RetrievalModel.from_dict(data).dense_prior == 0.0


def test_diversify_keeps_other_documents_in_the_first_places():
    cands = [Candidate(f"A/{i}", "A", 10 - i) for i in range(4)] + [Candidate("B/1", "B", 1.0)]
    assert [c.clause_id for c in diversify(cands, 2, 5)] == ["A/0", "A/1", "B/1", "A/2", "A/3"]
    lonely = [Candidate(f"A/{i}", "A", 10 - i) for i in range(4)]
    assert [c.clause_id for c in diversify(lonely, 2, 5)] == ["A/0", "A/1", "A/2", "A/3"]
    assert diversify(cands, 0, 5) == cands


@pytest.mark.parametrize(
    ("ask", "expected"),
    [
        ("税率是多少？", True),
        ("试用期最长多久？", True),
        ("应当计入哪个科目？", False),
        ("是否需要追溯调整？", False),
    ],
)
def test_asks_that_want_a_number(ask, expected):
    assert wants_quantity(ask) is expected
