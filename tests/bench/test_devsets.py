"""The retrieval benchmark's scoring (bench/devsets.py): hit figures, their intervals, gains.

The dev letters are few (31, a dozen with gold articles), so every figure the bench prints comes
with the number of items behind it and a 95% bootstrap interval, and a stage's gain over plain
BM25 is judged on the per-letter differences. Pure functions over hand-made citations.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from devsets import Cited, Item, answer_sets, gold_sets, item_values, paired_gain, score_rows  # noqa: E402

CAS14 = "企业会计准则第14号——收入（2017年修订）"
CAS21 = "企业会计准则第21号——租赁（2018年修订）"


def _letters() -> list[Item]:
    return [
        Item("a", "合同取得成本怎么摊销？", True, [14], [(14, "第二十八条")]),
        Item("b", "应付客户对价怎么处理？", True, [14], [(14, "第十九条")]),
        Item("c", "售后租回怎么处理？", True, [21]),
        Item("d", "转租怎么分类？", True, [21]),
        Item("u1", "试用期最长几个月？", False),
        Item("u2", "小规模纳税人征收率是多少？", False),
    ]


def _cite(title: str, number: str) -> Cited:
    return Cited(f"{title[:9]}/{number}", title, number)


def test_a_row_counts_each_figure_over_the_items_it_applies_to_with_an_interval():
    ranked = {
        "a": [_cite(CAS21, "第一条"), _cite(CAS14, "第二十八条")],  # the right article, second
        "b": [_cite(CAS14, "第二十条")],  # the right document, another article
        "c": [_cite(CAS21, "第五十一条")],
        "d": [_cite(CAS14, "第二条")],  # the wrong document
        "u1": [],
        "u2": [_cite(CAS21, "第二条")],
    }
    refused = {"u1": True, "d": False}
    row = score_rows(_letters(), ranked, refused)
    assert row["doc@1"] == 0.5 and row["doc@5"] == 0.75  # a (second), b, c of a..d
    assert row["art@1"] == 0.0 and row["art@5"] == 0.5  # only a and b have gold articles
    assert row["refused(ans)"] == 0.0 and row["refused(unans)"] == 0.5
    assert row["n"] == {
        "doc@1": 4,
        "art@1": 2,
        "doc@5": 4,
        "art@5": 2,
        "refused(ans)": 4,
        "refused(unans)": 2,
    }
    for metric, (low, high) in row["ci95"].items():
        assert low <= row[metric] <= high, metric
    assert row["ci95"]["refused(ans)"] == [0.0, 0.0]  # no answerable letter refused: no spread
    assert row["ci95"]["doc@5"][0] < 0.75 < row["ci95"]["doc@5"][1]  # four letters: wide


def test_a_stage_without_refusal_has_no_refusal_figures():
    letters = _letters()
    row = score_rows(letters, {i.id: [] for i in letters}, None)
    assert row["refused(ans)"] is None and row["refused(unans)"] is None
    assert "refused(ans)" not in row["n"] and "refused(ans)" not in row["ci95"]
    answerable = [i for i in letters if i.answerable]
    row = score_rows(answerable, {i.id: [] for i in answerable}, {})
    assert row["refused(ans)"] == 0.0 and row["refused(unans)"] is None  # none to refuse
    assert item_values(answerable, {i.id: [] for i in answerable}, {})["refused(unans)"] == {}


def test_a_gain_is_significant_only_when_its_interval_excludes_zero():
    letters = [Item(f"l{k}", "？", True, [14]) for k in range(30)]
    miss = {i.id: [_cite(CAS21, "第一条")] for i in letters}
    hit = {i.id: [_cite(CAS14, "第一条")] for i in letters}
    gain = paired_gain(letters, miss, hit, "doc@5")
    assert gain == {"n": 30, "delta": 1.0, "low": 1.0, "high": 1.0, "significant": True}

    # one letter gained, another lost: no difference, and an interval on both sides of 0
    even = paired_gain(letters, dict(miss, l0=hit["l0"]), dict(miss, l1=hit["l1"]), "doc@5")
    assert even is not None and even["delta"] == 0.0 and not even["significant"]
    assert even["low"] < 0 < even["high"]
    assert paired_gain(letters, miss, hit, "art@5") is None  # no letter has gold articles
    with pytest.raises(ValueError, match="hit figures"):
        paired_gain(letters, miss, hit, "refused(ans)")


def test_three_gains_and_no_loss_in_twelve_is_within_noise():
    """A resample without any of the three gains has probability (9/12)^12 = 3.2%, over the 2.5%
    tail: the interval reaches 0 (an exact sign test gives p = .25). Enough resamples say so for
    every seed, not only for lucky ones."""
    letters = [Item(f"l{k}", "？", True, [14], [(14, "第一条")]) for k in range(12)]
    miss = {i.id: [_cite(CAS21, "第一条")] for i in letters}
    hit = {i.id: [_cite(CAS14, "第一条")] for i in letters}
    after = dict(miss, l2=hit["l2"], l6=hit["l6"], l9=hit["l9"])
    gain = paired_gain(letters, miss, after, "art@5")
    assert gain is not None and gain["delta"] == 0.25 and gain["low"] == 0.0
    assert not gain["significant"]


def test_gains_pair_letters_by_id_not_by_position():
    """Only letters with gold articles count in the article figure, and each is paired with
    itself: x and y (no gold article) between them change nothing, a's loss cancels b's gain."""
    letters = [
        Item("a", "？", True, [14], [(14, "第一条")]),
        Item("x", "？", True, [21]),
        Item("b", "？", True, [14], [(14, "第二条")]),
        Item("y", "？", True, [21]),
        Item("c", "？", True, [14], [(14, "第三条")]),
    ]
    none = [_cite(CAS21, "第九条")]
    before = {"a": [_cite(CAS14, "第一条")], "x": none, "b": none, "y": none, "c": none}
    after = {"a": none, "x": none, "b": [_cite(CAS14, "第二条")], "y": none, "c": none}
    gain = paired_gain(letters, before, after, "art@5")
    assert gain is not None and gain["n"] == 3 and gain["delta"] == 0.0 and not gain["significant"]
    assert item_values(letters, after, None)["art@5"] == {"a": 0.0, "b": 1.0, "c": 0.0}


def test_gold_sets_keep_their_level_when_one_is_empty():
    clauses = {
        "CAS-14/第十九条": SimpleNamespace(doc_title=CAS14, number="第十九条"),
        "CAS-14/第二十条": SimpleNamespace(doc_title=CAS14, number="第二十条"),
    }
    named = Item("a", "？", True, [14], [(14, "第十九条")])
    assert gold_sets(named, clauses) == {
        "article": frozenset({"CAS-14/第十九条"}),
        "document": frozenset(clauses),
    }
    # the article is not in the index: the level stays empty, it does not borrow the document's
    absent = Item("b", "？", True, [14], [(14, "第九十九条")])
    assert gold_sets(absent, clauses) == {"article": frozenset(), "document": frozenset(clauses)}
    assert answer_sets(absent, clauses) == [frozenset(clauses)]
    assert gold_sets(Item("c", "？", True, [21]), clauses) == {
        "article": frozenset(),
        "document": frozenset(),
    }


def test_a_miss_says_where_its_gold_stands_and_when_the_index_lacks_it():
    """``bench_retrieval --misses``: a letter the table scores as missed is listed, with the gold's
    place in the pool and after reranking, or "not in index"; a hit is not listed."""
    from bench_retrieval import _miss

    clauses = {
        cid: SimpleNamespace(doc_title=CAS14, number=cid.split("/")[1])
        for cid in ("CAS-14/第十九条", "CAS-14/第二十条", "CAS-14/第二十一条")
    }
    order = ["CAS-14/第二十条", "CAS-14/第二十一条", "CAS-14/第十九条"]
    ranked = SimpleNamespace(
        evidence=True,
        fused=[SimpleNamespace(clause_id=c) for c in reversed(order)],
        candidates=[SimpleNamespace(clause_id=c) for c in order],
        answerable=0.81234,
        parsed=SimpleNamespace(ask="应付客户对价怎么处理？"),
    )
    cited = [_cite(CAS14, "第二十条")]  # the right standard, another article
    letter = Item("b", "？", True, [14], [(14, "第十九条")])
    miss = _miss(letter, clauses, ranked, cited)
    assert miss == {
        "id": "b",
        "misses": {"article": {"first_stage": 0, "reranked": 2}},
        "refused": False,
        "answerable": 0.812,
        "ask": "应付客户对价怎么处理？",
    }
    # the gold article is not in the graph: still a miss, and said so
    absent = Item("c", "？", True, [14], [(14, "第九十九条")])
    assert _miss(absent, clauses, ranked, cited)["misses"] == {"article": "not in index"}
    # refused: no citations, so both levels are missed
    refused = SimpleNamespace(**{**vars(ranked), "evidence": False})
    both = _miss(letter, clauses, refused, [])
    assert both["refused"] and set(both["misses"]) == {"document", "article"}
    assert both["misses"]["document"] == {"first_stage": 0, "reranked": 0}
    # found at the article level: nothing to list
    assert _miss(letter, clauses, ranked, [_cite(CAS14, "第十九条")]) is None
