"""zhtext's sentence splitter: the rule every caller shares, and its two options."""

from __future__ import annotations

import pytest

from kg.verification.sentences import split_sentences as answer_sentences
from zhtext import Span, sentence_spans, split_sentences


def test_full_and_half_width_ends_and_line_breaks_split():
    text = "存货应当按照成本计量。发票丢失怎么办？请补办!逾期不得报销;\n附件一"
    assert split_sentences(text) == [
        "存货应当按照成本计量。",
        "发票丢失怎么办？",
        "请补办!",
        "逾期不得报销;",
        "附件一",
    ]


def test_a_run_of_end_marks_stays_with_its_sentence():
    assert split_sentences("真的吗？！是的。。好") == ["真的吗？！", "是的。。", "好"]


def test_text_without_content_is_not_a_sentence():
    assert split_sentences("。——\n  \n（）；“”。A。") == ["A。"]
    assert split_sentences("") == []


def test_spans_are_trimmed_and_index_the_text():
    text = "  第一条 总则。 \n （一）合同；"
    spans = sentence_spans(text)
    assert [text[s.start : s.end] for s in spans] == ["第一条 总则。", "（一）合同；"]
    assert spans[0] == Span(2, 9)


def test_colons_end_sentences_only_when_asked():
    text = "同时满足下列条件：（一）合同已批准；（二）对价很可能收回。"
    assert split_sentences(text) == ["同时满足下列条件：（一）合同已批准；", "（二）对价很可能收回。"]
    assert split_sentences(text, colon=True) == [
        "同时满足下列条件：",
        "（一）合同已批准；",
        "（二）对价很可能收回。",
    ]
    assert split_sentences("报销如下:机票", colon=True) == ["报销如下:", "机票"]


def test_a_colon_between_digits_is_a_number_not_an_end():
    assert split_sentences("每日9:30前提交，比例为1:2。其后：补交", colon=True) == [
        "每日9:30前提交，比例为1:2。",
        "其后：",
        "补交",
    ]


def test_keep_end_false_stops_before_the_marks():
    text = "企业应当计量。存货：成本；"
    spans = sentence_spans(text, colon=True, keep_end=False)
    assert [text[s.start : s.end] for s in spans] == ["企业应当计量", "存货", "成本"]


def test_list_items_on_their_own_lines_are_sentences():
    text = "报销程序如下：\n1. 填写报销单；\n2. 部门负责人审批。\n① 财务复核"
    assert split_sentences(text) == ["报销程序如下：", "1. 填写报销单；", "2. 部门负责人审批。", "① 财务复核"]


def test_the_verifier_splits_an_answer_where_the_toolkit_splits_its_clause():
    clause = "企业应当在资产负债表日计量存货。可变现净值低于成本的，应当计提跌价准备；不得随意转回!"
    answer = "".join(f"{s[:-1]}[[CAS-1/第十五条]]{s[-1]}" for s in split_sentences(clause))
    got = answer_sentences(answer)
    assert [s.text for s in got] == split_sentences(clause)
    assert all(s.clause_ids == ["CAS-1/第十五条"] for s in got)


@pytest.mark.parametrize("text", ["“本条所称客户。”下一句", "A；；；B", "x\r\ny"])
def test_spans_never_overlap_and_cover_all_content(text):
    spans = sentence_spans(text, colon=True)
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))
    covered = "".join(text[s.start : s.end] for s in spans)
    assert [c for c in text if c.isalnum()] == [c for c in covered if c.isalnum()]
