"""The retrieval benchmark's scoring (bench/devsets.py): hit figures, their intervals, gains.

The dev letters are few (31, a dozen with gold articles), so every figure the bench prints comes
with the number of items behind it and a 95% bootstrap interval, and a stage's gain over plain
BM25 is judged on the per-letter differences. Pure functions over hand-made citations.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from devsets import Cited, Item, item_values, paired_gain, score_rows  # noqa: E402

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
    assert row["n"] == {"doc@1": 4, "art@1": 2, "doc@5": 4, "art@5": 2, "refused(ans)": 4, "refused(unans)": 2}
    for metric, (low, high) in row["ci95"].items():
        assert low <= row[metric] <= high, metric
    assert row["ci95"]["refused(ans)"] == [0.0, 0.0]  # no answerable letter refused: no spread
    assert row["ci95"]["doc@5"][0] < 0.75 < row["ci95"]["doc@5"][1]  # four letters: wide


def test_without_unanswerable_items_their_refusal_share_is_absent_not_zero():
    letters = [i for i in _letters() if i.answerable]
    row = score_rows(letters, {i.id: [] for i in letters}, {})
    assert row["refused(unans)"] is None and "refused(unans)" not in row["ci95"]
    assert item_values(letters, {i.id: [] for i in letters}, {})["refused(unans)"] == []


def test_a_gain_is_significant_only_when_its_interval_excludes_zero():
    letters = [Item(f"l{k}", "？", True, [14]) for k in range(30)]
    miss = {i.id: [_cite(CAS21, "第一条")] for i in letters}
    hit = {i.id: [_cite(CAS14, "第一条")] for i in letters}
    gain = paired_gain(letters, miss, hit, "doc@5")
    assert gain == {"n": 30, "gain": 1.0, "ci95": [1.0, 1.0], "significant": True}

    # one letter gained, another lost: no difference, and an interval on both sides of 0
    before = dict(miss, l0=hit["l0"])
    after = dict(miss, l1=hit["l1"])
    even = paired_gain(letters, before, after, "doc@5")
    assert even is not None and even["gain"] == 0.0 and not even["significant"]
    assert even["ci95"][0] < 0 < even["ci95"][1]
    assert paired_gain(letters, miss, hit, "art@5") is None  # no letter has gold articles


@pytest.mark.parametrize("metric", ["doc@5", "art@5"])
def test_gains_pair_the_same_letters(metric):
    letters = _letters()
    before = {i.id: [] for i in letters}
    after = {
        "a": [_cite(CAS14, "第二十八条")],
        "b": [_cite(CAS14, "第十九条")],
        "c": [_cite(CAS21, "第一条")],
        "d": [_cite(CAS21, "第一条")],
    }
    gain = paired_gain(letters, before, dict(before, **after), metric)
    assert gain is not None and gain["gain"] == 1.0 and gain["n"] == (4 if metric == "doc@5" else 2)
