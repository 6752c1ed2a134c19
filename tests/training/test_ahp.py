"""AHP weights and the consistency check of the composite score's comparison matrix."""

from __future__ import annotations

import math

import pytest
import yaml

from kgqa.errors import ConfigError
from training.eval_config import DEFAULT_CONFIG, Criterion, EvalConfig
from training.evaluate import composite
from training.metrics.ahp import checked_weights, weights


def test_consistent_matrix_by_hand():
    # a_ij = w_i / w_j with w = (4, 2, 1): perfectly consistent, lambda_max = n = 3
    w, lam, ci, cr = weights([[1, 2, 4], ["1/2", 1, 2], ["1/4", "1/2", 1]])
    assert w == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert lam == pytest.approx(3.0)
    assert ci == pytest.approx(0.0, abs=1e-9) and cr == pytest.approx(0.0, abs=1e-9)


def test_slightly_inconsistent_3x3_by_hand():
    # For a 3x3 reciprocal matrix (a12 = a, a13 = b, a23 = c) the principal eigenvalue is
    # 1 + (ac/b)^(1/3) + (b/(ac))^(1/3), and the eigenvector is the rows' geometric means.
    a, b, c = 2.0, 5.0, 3.0
    x = (a * c / b) ** (1 / 3)
    lam_hand = 1 + x + 1 / x  # 3.00369...
    gm = [(a * b) ** (1 / 3), (c / a) ** (1 / 3), (1 / (b * c)) ** (1 / 3)]
    w, lam, ci, cr = weights([[1, a, b], [1 / a, 1, c], [1 / b, 1 / c, 1]])
    assert lam == pytest.approx(lam_hand)
    assert w == pytest.approx([g / sum(gm) for g in gm])
    assert ci == pytest.approx((lam_hand - 3) / 2)
    assert cr == pytest.approx((lam_hand - 3) / 2 / 0.58)
    assert cr < 0.1


def test_inconsistent_matrix_is_rejected_naming_the_file_and_cr():
    # A > B (3), B > C (5) but C > A (5): circular judgements
    matrix = [[1, 3, "1/5"], ["1/3", 1, 5], [5, "1/5", 1]]
    _, _, _, cr = weights(matrix)
    assert cr > 0.1
    with pytest.raises(ConfigError, match=r"my-eval\.yaml.*CR = 2\.1\d\d > 0\.1"):
        checked_weights(matrix, source="my-eval.yaml")


def test_malformed_matrices_are_config_errors():
    with pytest.raises(ConfigError, match="not reciprocal"):
        checked_weights([[1, 2], [2, 1]], "x.yaml")
    with pytest.raises(ConfigError, match="positive"):
        checked_weights([[1, 0], [0, 1]], "x.yaml")
    with pytest.raises(ConfigError, match="not a number"):
        checked_weights([[1, "two"], ["1/2", 1]], "x.yaml")


def test_shipped_config_is_consistent_and_weighs_facts_first():
    config = EvalConfig.load()
    ahp = config.ahp()
    assert ahp.cr < 0.1
    assert math.isclose(sum(ahp.weights), 1.0)
    by_name = dict(zip([c.metric for c in config.composite.criteria], ahp.weights, strict=True))
    assert by_name["key_fact_accuracy"] == pytest.approx(by_name["hallucination_rate"])
    assert by_name["key_fact_accuracy"] == max(by_name.values())
    assert by_name["bleu"] == min(by_name.values())


def test_loading_an_inconsistent_config_fails_before_any_model(tmp_path):
    data = yaml.safe_load(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    data["composite"]["criteria"] = [
        {"metric": "token_f1"},
        {"metric": "rouge_l"},
        {"metric": "bleu", "scale": 100},
    ]
    data["composite"]["matrix"] = [[1, 9, "1/9"], ["1/9", 1, 9], [9, "1/9", 1]]
    path = tmp_path / "bad-eval.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad-eval\.yaml.*inconsistent.*CR ="):
        EvalConfig.load(path)
    data["composite"]["matrix"] = [[1, 2], ["1/2", 1]]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match="must be 3x3"):
        EvalConfig.load(path)


def test_criterion_normalization_and_composite_renormalization():
    assert Criterion(metric="hallucination_rate", invert=True).normalize(0.25) == 0.75
    assert Criterion(metric="bleu", scale=100).normalize(40.0) == pytest.approx(0.4)
    assert Criterion(metric="semantic_similarity", floor=0.5).normalize(0.75) == pytest.approx(0.5)
    assert Criterion(metric="semantic_similarity", floor=0.5).normalize(0.3) == 0.0
    assert Criterion(metric="perplexity", reciprocal=True).normalize(4.0) == 0.25
    with pytest.raises(ValueError, match="unknown composite metric"):
        Criterion(metric="accuracy")

    config = EvalConfig.load()
    perfect = {
        "key_fact_accuracy": 1.0,
        "hallucination_rate": 0.0,
        "citation_f1": 1.0,
        "false_refusal_rate": 0.0,
        "correct_refusal_rate": 1.0,
        "token_f1": 1.0,
        "rouge_l": 1.0,
        "semantic_similarity": 1.0,
        "bleu": 100.0,
    }
    assert composite(perfect, config)["score"] == pytest.approx(1.0)
    # no unanswerable records: the correct-refusal criterion is dropped, the rest renormalized
    partial = {**perfect, "correct_refusal_rate": None, "key_fact_accuracy": 0.0}
    result = composite(partial, config)
    assert result["dropped"] == ["correct_refusal_rate"]
    assert sum(result["effective_weights"].values()) == pytest.approx(1.0)
    w = result["weights"]
    assert result["score"] == pytest.approx(1 - w["key_fact_accuracy"] / (1 - w["correct_refusal_rate"]))
