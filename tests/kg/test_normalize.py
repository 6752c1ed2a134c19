"""Normalization of atoms, with phrases taken from the corpus laws and standards."""

from __future__ import annotations

import pytest

from kg.normalize import (
    Quantity,
    article_number,
    chinese_article,
    extract_quantities,
    normalize_atom,
    normalize_text,
    parse_number,
)


@pytest.mark.parametrize(
    ("surface", "expected"),
    [
        # durations
        ("二十日", "20日"),
        ("三十个工作日", "30工作日"),
        ("5个工作日", "5工作日"),
        ("六个月", "6个月"),
        ("十八个月", "18个月"),
        ("两年", "2年"),
        ("15天", "15日"),
        ("一年内", "1年"),
        ("1个季度", "1季度"),
        # rates
        ("百分之三", "3%"),
        ("3%", "3%"),
        ("３％", "3%"),
        ("百分之十七点五", "17.5%"),
        ("千分之五", "0.5%"),
        ("3‰", "0.3%"),
        # amounts
        ("5万元", "50000元"),
        ("五十万元", "500000元"),
        ("1,000万元", "10000000元"),
        ("1.5亿元", "150000000元"),
        ("人民币5000元", "5000元"),
        ("三千元", "3000元"),
        # dates and numbers
        ("2024年6月28日", "2024-06-28"),
        ("二〇二四年六月二十八日", "2024-06-28"),
        ("第二十二条", "第22条"),
        ("第22条", "第22条"),
        ("第一百一十条", "第110条"),
        ("第十四号", "第14号"),
        ("第 22 号", "第22号"),
        ("一倍", "1倍"),
    ],
)
def test_normalize_atom(surface: str, expected: str) -> None:
    assert normalize_atom(surface) == expected


def test_equal_surfaces_normalize_equal() -> None:
    assert normalize_atom("二十日") == normalize_atom("20日") == normalize_atom("20天")
    assert normalize_atom("百分之三") == normalize_atom("3%")
    assert normalize_atom("五万元") == normalize_atom("5万元") == normalize_atom("50,000元")
    assert normalize_atom("第五条") == normalize_atom("第5条")
    assert normalize_atom("二十日") != normalize_atom("二十个工作日")


def test_comparator_is_kept_apart_unless_asked() -> None:
    assert normalize_atom("不超过三个月") == "3个月"
    assert normalize_atom("不超过三个月", with_comparator=True) == "<=3个月"
    assert normalize_atom("二十万元以上", with_comparator=True) == ">=200000元"
    assert normalize_atom("超过1万元", with_comparator=True) == ">10000元"
    assert normalize_atom("不足二十万元", with_comparator=True) == "<200000元"
    assert normalize_atom("十五日内", with_comparator=True) == "<=15日"


def test_non_quantities_come_back_trimmed() -> None:
    assert normalize_atom(" 施工单位 。") == "施工单位"
    assert normalize_atom("应当") == "应当"


def test_penalty_range_from_accounting_law() -> None:
    text = "对单位可以并处二十万元以上一百万元以下的罚款，对其直接负责的主管人员和其他直接责任人员可以处五万元以下的罚款"
    found = extract_quantities(text)
    assert [(q.kind, q.normalized, q.comparator) for q in found] == [
        ("amount", "200000元", ">="),
        ("amount", "1000000元", "<="),
        ("amount", "50000元", "<="),
    ]
    first = found[0]
    assert text[first.span[0] : first.span[1]] == first.surface == "二十万元以上"


def test_vat_filing_deadlines_skip_day_of_month() -> None:
    text = "以1日、3日、5日、10日或者15日为1个纳税期的，自期满之日起5日内预缴税款，于次月1日起15日内申报纳税并结清上月应纳税款。"
    durations = [q.normalized for q in extract_quantities(text, {"duration"})]
    # 次月1日 is the first day of next month, not a one-day period.
    assert durations == ["1日", "3日", "5日", "10日", "15日", "5日", "15日"]
    assert extract_quantities(text, {"duration"})[-2].comparator == "<="


def test_tendering_law_per_mille_range() -> None:
    found = extract_quantities("可以处项目合同金额千分之五以上千分之十以下的罚款")
    assert [(q.normalized, q.comparator) for q in found] == [("0.5%", ">="), ("1%", "<=")]


def test_dates_are_not_durations_and_years_are_not_periods() -> None:
    found = extract_quantities("本条例自2020年5月1日起施行。企业会计准则第14号——收入（2017年修订）")
    assert [(q.kind, q.normalized) for q in found] == [("date", "2020-05-01"), ("article", "第14号")]


def test_deadline_with_upper_bound_words() -> None:
    (q,) = extract_quantities("人工费用拨付周期不得超过1个月。")
    assert q == Quantity("duration", 1.0, "个月", "不得超过1个月", (8, 15), "<=")
    (q,) = extract_quantities("但最长不得超过十八个月")
    assert (q.normalized, q.comparator) == ("18个月", "<=")
    (q,) = extract_quantities("从事会计工作三年以上经历")
    assert (q.normalized, q.comparator) == ("3年", ">=")


def test_rates_of_the_vat_regulation() -> None:
    text = "除本条第二项、第四项、第五项另有规定外，税率为17%。小规模纳税人增值税征收率为3%。税率为百分之十三"
    assert [q.normalized for q in extract_quantities(text, {"rate"})] == ["17%", "3%", "13%"]


def test_normalize_text_rewrites_quantities_in_place() -> None:
    text = "建设单位应当自领取施工许可证之日起三个月内开工；每次不超过三个月，罚款五十万元以下。"
    assert (
        normalize_text(text)
        == "建设单位应当自领取施工许可证之日起3个月内开工；每次不超过3个月，罚款500000元以下。"
    )
    assert "20日" in normalize_text("自收到申请之日起二十日内")


def test_article_numbers_both_ways() -> None:
    assert article_number("第二十二条") == (22, "条")
    assert article_number("第 5 条") == (5, "条")
    assert article_number("总则") is None
    assert chinese_article(22) == "第二十二条"
    assert chinese_article(10) == "第十条"
    assert chinese_article(110) == "第一百一十条"


def test_parse_number_rejects_words() -> None:
    assert parse_number("十七点五") == 17.5
    assert parse_number("1,000") == 1000
    with pytest.raises(ValueError):
        parse_number("会计")
