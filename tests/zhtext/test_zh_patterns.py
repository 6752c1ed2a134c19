"""The shared patterns: the definition pattern above all (its copies drifted apart)."""

from __future__ import annotations

import pytest

from zhtext import CLAUSE_NUMBER, CONTENT_CHAR, DEFINITION, ITEM_MARKER, NUMBERED_PART


@pytest.mark.parametrize(
    ("sentence", "term"),
    [
        ("本手册所称计量周期，是指上月二十六日至本月二十五日的期间。", "计量周期"),
        ("本指引所称差旅费，是指员工因公出差发生的交通费和住宿费。", "差旅费"),
        ("本制度所称关联方，系指与公司存在控制关系的各方。", "关联方"),
        ("本准则所称客户，是指与企业订立合同并支付对价的一方。", "客户"),
        ("本准则中所称的存货，是指企业持有以备出售的产成品。", "存货"),
        ("本条例所称农民工，是指为用人单位提供劳动的农村居民。", "农民工"),
        ("本法所称会计机构，是指单位内部负责会计工作的机构。", "会计机构"),
        ("本条所称客户，是指与企业订立合同的一方。", "客户"),
        ("本手册第一条所称结算，是指进度款结算和竣工结算。", "结算"),
        ("前款所称重大事项，是指金额超过五十万元的事项。", "重大事项"),
        ("收入，是指企业在日常活动中形成的经济利益的总流入。", "收入"),
        ("“现场签证”是指共同签认的书面证明。", "现场签证"),
        ("固定资产指的是为生产商品而持有的有形资产。", "固定资产"),
    ],
)
def test_definition_names_the_term_not_the_reference(sentence, term):
    m = DEFINITION.match(sentence)
    assert m is not None and m.group("term") == term
    assert m.group("body") and "所称" not in m.group("term")


@pytest.mark.parametrize(
    "sentence",
    ["企业应当在十日内支付。", "本手册所称日，除注明工作日外，均指日历日。", "第三条 以下简称“转让商品”。"],
)
def test_sentences_that_define_nothing_do_not_match(sentence):
    assert DEFINITION.match(sentence) is None


def test_clause_number_prefix_in_both_numeral_styles():
    assert CLAUSE_NUMBER.sub("", "第二十二条 建筑工程发包") == "建筑工程发包"
    assert CLAUSE_NUMBER.sub("", "第22条建筑工程") == "建筑工程"
    assert CLAUSE_NUMBER.sub("", "依照第五条规定") == "依照第五条规定"


def test_item_markers():
    for text in ("（一）合同已批准", "(2)合同已批准", "3.合同已批准", "4、合同已批准", "① 合同已批准"):
        assert ITEM_MARKER.sub("", text) == "合同已批准"


def test_content_characters_are_ideographs_letters_and_digits_of_both_widths():
    assert CONTENT_CHAR.findall("综上：A１ｂ，——9。") == ["综", "上", "A", "１", "ｂ", "9"]


def test_numbered_part_finds_numeral_and_unit():
    assert NUMBERED_PART.findall("第 22 条与第十四号及第三章") == [("22", "条"), ("十四", "号"), ("三", "章")]
