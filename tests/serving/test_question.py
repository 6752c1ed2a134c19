"""Cutting a letter into greeting, quotes, background and ask; naming standards the way letters do.

The examples are written here in the style of the consultation letters staff send (greeting,
quoted rule, case, ask, thanks); they are not the dev letters.
"""

from __future__ import annotations

import pytest

from serving.retrieval.direct import AliasTable, DirectResolver, StandardNames
from serving.retrieval.question import clean, parse_question
from serving.retrieval.quotes import QuoteIndex, ngrams


def test_a_short_question_is_all_ask():
    q = parse_question("存货应当按照什么进行初始计量？")
    assert q.ask == "存货应当按照什么进行初始计量？"
    assert q.greeting == [] and q.quotes == [] and q.background == []
    assert not q.is_letter


def test_a_letter_is_cut_into_its_parts():
    letter = (
        "尊敬的财政部会计司领导，您好！我是一家物流公司的会计人员。"
        "准则规定：“企业应当在履行了合同中的履约义务，即在客户取得相关商品控制权时确认收入。”"
        "我公司运输合同的履约期间跨越两个会计年度，客户在次年才签收。"
        "请问我们应当在哪个时点确认运输收入？谢谢！"
    )
    q = parse_question(letter)
    assert q.greeting[0].startswith("尊敬的财政部会计司领导")
    assert q.greeting[-1].startswith("谢谢")
    assert q.quotes == ["企业应当在履行了合同中的履约义务，即在客户取得相关商品控制权时确认收入。"]
    assert q.ask == "请问我们应当在哪个时点确认运输收入？"
    assert any("跨越两个会计年度" in b for b in q.background)
    assert "谢谢" not in q.body and "尊敬" not in q.body
    assert q.is_letter


def test_an_ask_after_a_lead_in_colon_and_a_self_introduction_that_is_not_one():
    q = parse_question("本人是一名会计从业人员，有以下问题想咨询。烦请领导予以指导：预收的增值税能否确认为合同负债？")
    assert q.ask == "预收的增值税能否确认为合同负债？"
    assert any(b.startswith("本人是一名会计从业人员") for b in q.background)


def test_without_any_asking_sentence_the_last_one_is_the_point():
    q = parse_question("我单位收到政府拨付的搬迁补偿款。该补偿款用于购建新厂房。")
    assert q.asks == ["该补偿款用于购建新厂房。"]


def test_markdown_escapes_and_odd_spaces_are_cleaned():
    assert clean("《企业会计准则第25号\\-原保险合同》\u3000 第十条") == "《企业会计准则第25号-原保险合同》 第十条"


def test_short_quoted_phrases_are_terms_not_quotes():
    q = parse_question("支付的印花税能否计入“合同取得成本”科目，还是“税金及附加”？")
    assert q.quotes == [] and "合同取得成本" in q.ask
    assert q.terms == ["合同取得成本", "税金及附加"]


# --- naming standards -------------------------------------------------------------------------------

DOCS = [
    ("CAS-14-收入", "企业会计准则第14号——收入（2017年修订）"),
    ("CAS-19-外币折算", "企业会计准则第19号——外币折算（2006）"),
    ("CAS-22-金融工具确认和计量", "企业会计准则第22号——金融工具确认和计量（2017年修订）"),
    ("CAS-37-金融工具列报", "企业会计准则第37号——金融工具列报（2017年修订）"),
    ("CAS-25-保险合同", "企业会计准则第25号——保险合同"),
    ("CAS-25-原保险合同", "企业会计准则第25号——原保险合同（2006）"),
    ("CAS-8-资产减值", "企业会计准则第8号——资产减值（2006）"),
    ("CAS-1-存货-应用指南", "《企业会计准则第1号——存货》应用指南"),
]
ARTICLES = DirectResolver.article_map(
    [("CAS-19-外币折算/第三条", "CAS-19-外币折算", "第三条"), ("CAS-14-收入/第五条", "CAS-14-收入", "第五条")]
)


@pytest.fixture(scope="module")
def resolver() -> DirectResolver:
    return DirectResolver(AliasTable(DOCS), ARTICLES, StandardNames(DOCS))


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("第１９号—外币折算第三条怎么理解", {"CAS-19-外币折算": 1.0}),  # full-width digits, odd dash
        ("《企业会计准则第15号——收入》实施以后", {"CAS-14-收入": 0.8}),  # misnumbered: the subject wins
        ("按照新收入准则", {"CAS-14-收入": 0.8}),
        ("企业会计准则第25号-原担保合同第十条", {"CAS-25-原保险合同": 1.0}),  # one character off
        ("适用金融工具准则还是收入准则", {"CAS-22-金融工具确认和计量": 0.5, "CAS-37-金融工具列报": 0.5, "CAS-14-收入": 0.8}),
        ("14号准则第五条", {"CAS-14-收入": 1.0}),
    ],
)
def test_standards_are_found_however_letters_write_them(resolver, question, expected):
    assert resolver.resolve(question).confidence == expected


@pytest.mark.parametrize(
    "question",
    [
        "根据《企业会计准则解释第8号》，私募基金是否纳入合并范围？",  # another series: not CAS 8
        "按照财会〔2017〕22号文的规定",  # a document number, not a standard
        "银监会令2010年第3号",
        "参照国际财务报告准则",
        "执行企业会计准则的企业",
    ],
)
def test_numbers_and_words_that_do_not_name_a_standard(resolver, question):
    assert resolver.resolve(question).confidence == {}


def test_a_misnumbered_standard_still_finds_its_article(resolver):
    assert resolver.resolve("第１９号—外币折算第三条").clause_ids == ["CAS-19-外币折算/第三条"]


# --- quote lookup ---------------------------------------------------------------------------------


def test_quote_lookup_finds_a_nearly_verbatim_quote():
    texts = [
        "第五条 出租人发生的与经营租赁有关的初始直接费用应当资本化至租赁标的资产的成本。",
        "第六条 承租人应当在租赁期开始日确认使用权资产和租赁负债。",
    ]
    index = QuoteIndex(texts)
    quoted = "出租人发生的与经营租赁有关的初始直接费用，应当资本化至租赁标的资产成本"  # a comma added, 的 dropped
    (best, share), *rest = index.lookup(quoted)
    assert best == 0 and share > 0.85
    assert all(s < 0.3 for _, s in rest)
    assert ngrams("１２３４５") == ngrams("12345")  # full width is the same text


_TIED_LOOKUP = """
import json
from serving.retrieval.quotes import QuoteIndex
# each unit holds a different one of the quote's five 4-grams: all tie at 1/5
texts = ["第五条 五六七八", "无关的条文", "第一条 一二三四", "第三条 三四五六", "第四条 四五六七"]
print(json.dumps(QuoteIndex(texts).lookup("一二三四五六七八", 3)))
"""


def test_tied_quote_shares_rank_by_unit_position_in_every_process():
    """Every server process must cite the same clauses: a tie is broken by unit position, not by
    the order of a set of n-grams, which changes with each process's string hashing."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])
    runs = {
        subprocess.run(
            [sys.executable, "-c", _TIED_LOOKUP],
            env={**os.environ, "PYTHONHASHSEED": str(seed), "PYTHONPATH": root},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in range(6)
    }
    assert len(runs) == 1
    ranked = json.loads(runs.pop())
    assert ranked == [[0, 0.2], [2, 0.2], [3, 0.2]]  # four units tie; the first three by position
