"""The learned second stage: bounded logistic regressions, pairwise ranking, calibration, diversity."""

from __future__ import annotations

import numpy as np
import pytest

from kgqa.errors import ConfigError
from serving.retrieval.calibration import CALIBRATION_FEATURES, calibrate
from serving.retrieval.features import ANSWERABILITY_FEATURES, wants_quantity
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
    assert model.intercept == 0.0 and model.coef[0] > abs(model.coef[1]) and model.coef[0] > abs(model.coef[2])
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


def test_diversify_keeps_other_documents_in_the_first_places():
    cands = [Candidate(f"A/{i}", "A", 10 - i) for i in range(4)] + [Candidate("B/1", "B", 1.0)]
    assert [c.clause_id for c in diversify(cands, 2, 5)] == ["A/0", "A/1", "B/1", "A/2", "A/3"]
    lonely = [Candidate(f"A/{i}", "A", 10 - i) for i in range(4)]
    assert [c.clause_id for c in diversify(lonely, 2, 5)] == ["A/0", "A/1", "A/2", "A/3"]
    assert diversify(cands, 0, 5) == cands


@pytest.mark.parametrize(
    ("ask", "expected"),
    [("税率是多少？", True), ("试用期最长多久？", True), ("应当计入哪个科目？", False), ("是否需要追溯调整？", False)],
)
def test_asks_that_want_a_number(ask, expected):
    assert wants_quantity(ask) is expected
