"""Pure retrieval logic, no driver: weighted RRF, tokenization, document aliases and named articles."""

from __future__ import annotations

import pytest

from kgqa.errors import ConfigError
from serving.retrieval.bm25 import Bm25Index
from serving.retrieval.config import RetrievalConfig
from serving.retrieval.coverage import TermCoverage
from serving.retrieval.direct import AliasTable, DirectResolver, normalize_question
from serving.retrieval.fusion import weighted_rrf
from zhtext import Tokenizer, fold

DOCS = [
    ("CAS-14-收入", "企业会计准则第14号——收入（2017年修订）"),
    ("CAS-14-收入-应用指南", "《企业会计准则第14号——收入》应用指南（2018）"),
    ("CAS-1-存货", "企业会计准则第1号——存货（2006）"),
    ("CAS-4-固定资产", "企业会计准则第4号——固定资产（2006）"),
    ("建筑法", "中华人民共和国建筑法"),
    ("会计法", "中华人民共和国会计法"),
    ("增值税暂行条例", "中华人民共和国增值税暂行条例"),
]
ARTICLES = DirectResolver.article_map(
    [
        ("CAS-14-收入/第五条", "CAS-14-收入", "第五条"),
        ("CAS-1-存货/第五条", "CAS-1-存货", "第五条"),
        ("CAS-4-固定资产/第五条", "CAS-4-固定资产", "第五条"),
        ("建筑法/第二十二条", "建筑法", "第二十二条"),
        ("会计法/第十条", "会计法", "第十条"),
        ("增值税暂行条例/第十二条", "增值税暂行条例", "第12条"),
        ("CAS-14-收入-应用指南/§4.1", "CAS-14-收入-应用指南", "§4.1"),
    ]
)


# --- fusion ---------------------------------------------------------------------------------------


def test_weighted_rrf_sums_weighted_reciprocal_ranks():
    fused = weighted_rrf({"a": ["x", "y", "z"], "b": ["y", "w"]}, {"a": 1.0, "b": 2.0}, rrf_k=10)
    scores = {f.clause_id: f.score for f in fused}
    assert scores["y"] == pytest.approx(1 / 12 + 2 / 11)
    assert scores["x"] == pytest.approx(1 / 11)
    assert scores["w"] == pytest.approx(2 / 12)
    assert scores["z"] == pytest.approx(1 / 13)
    assert [f.clause_id for f in fused] == ["y", "w", "x", "z"]
    assert fused[0].sources == {"a": 2, "b": 1}


def test_weighted_rrf_zero_weight_records_rank_but_adds_nothing():
    fused = weighted_rrf({"a": ["x"], "dense": ["q", "x"]}, {"a": 1.0, "dense": 0.0}, rrf_k=60)
    by_id = {f.clause_id: f for f in fused}
    assert by_id["x"].score == pytest.approx(1 / 61)
    assert by_id["x"].sources == {"a": 1, "dense": 2}
    assert by_id["q"].score == 0.0


def test_weighted_rrf_keeps_best_rank_of_duplicates_and_breaks_ties_by_first_appearance():
    fused = weighted_rrf({"a": ["x", "x", "y"]}, {"a": 1.0}, rrf_k=1)
    assert [(f.clause_id, f.sources["a"]) for f in fused] == [("x", 1), ("y", 2)]
    tie = weighted_rrf({"a": ["p"], "b": ["q"]}, {"a": 1.0, "b": 1.0})
    assert [f.clause_id for f in tie] == ["p", "q"]


def test_config_rejects_unknown_retriever_and_fills_missing_weights():
    with pytest.raises(ConfigError, match="unknown retrievers"):
        RetrievalConfig(weights={"bm42": 1.0})
    cfg = RetrievalConfig(weights={"dense": 0.5})
    assert cfg.weight("dense") == 0.5 and cfg.weight("bm25") == 1.0 and cfg.dense_enabled
    assert not RetrievalConfig(weights={"dense": 0.0}).dense_enabled


# --- tokenization and lexical support --------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


def test_tokens_drop_question_words_and_unify_article_numbers(tokenizer):
    assert tokenizer.tokens("建筑法第22条规定了什么？") == tokenizer.tokens("建筑法第二十二条")
    tokens = tokenizer.tokens("合同需要满足哪些条件才能确认收入？")
    assert {"合同", "条件", "确认", "收入"} <= set(tokens)
    assert not {"哪些", "需要", "？", "什么"} & set(tokens)


def test_bm25_ranks_the_matching_unit_and_measures_support(tokenizer):
    texts = [
        "存货应当按照成本进行初始计量。",
        "固定资产应当按月计提折旧。",
        "会计年度自公历1月1日起至12月31日止。",
    ]
    index = Bm25Index([tokenizer.tokens(t) for t in texts])
    hits = index.search(tokenizer.tokens("固定资产怎么计提折旧"), 3)
    assert hits[0][0] == 1
    cover = TermCoverage([index.unit_terms(i) for i in range(len(texts))], [fold(t) for t in texts])
    assert cover.units(index.weights(tokenizer.tokens("固定资产计提折旧")))[1] == pytest.approx(1.0)
    assert cover.units(index.weights(tokenizer.tokens("员工年终奖个人所得税")))[1] == 0.0
    # a term inside a longer word of the clause counts: segmentation differs between the two sides
    assert cover.units({"折": 1.0}).tolist() == [0.0, 1.0, 0.0]
    # weighted by IDF: the share of the weight present, not of the terms
    assert cover.units({"存货": 3.0, "折旧": 1.0}).tolist() == [0.75, 0.25, 0.0]
    assert cover.units({}).tolist() == [0.0, 0.0, 0.0]


def test_term_coverage_cache_is_a_bounded_lru():
    texts = ["甲乙丙", "乙丙丁"]
    cover = TermCoverage([frozenset([t]) for t in texts], texts, max_cached_cells=6)  # 3 terms of 2 units
    first = cover.presence("甲")
    cover.units({"乙": 1.0, "丙": 1.0})
    assert cover.presence("甲") is first  # a hit is the cached row, and is now the newest
    cover.units({"丁": 1.0})  # evicts the least recently used: 乙
    assert len(cover) == 3
    assert cover.presence("甲") is first
    assert cover.presence("乙").tolist() == [True, True]  # computed again, the same


def test_term_coverage_counts_words_that_are_not_substrings():
    """A numbered part is one canonical token (第22条) that the text may write otherwise."""
    texts = ["第二十二条 存货的计量", "其他条文"]
    cover = TermCoverage([frozenset(["第22条", "存货"]), frozenset(["其他"])], texts)
    assert cover.units({"第22条": 2.0, "计量": 1.0, "缺席": 1.0}).tolist() == [0.75, 0.0]


# --- named documents and articles ------------------------------------------------------------------


def test_aliases_cover_number_subject_and_law_forms():
    table = AliasTable(DOCS)
    aliases = table.aliases()
    for alias, doc in [
        ("企业会计准则第14号", "CAS-14-收入"),
        ("第14号准则", "CAS-14-收入"),
        ("收入准则", "CAS-14-收入"),
        ("收入准则应用指南", "CAS-14-收入-应用指南"),
        ("存货准则", "CAS-1-存货"),
        ("建筑法", "建筑法"),
        ("增值税条例", "增值税暂行条例"),
    ]:
        assert aliases[normalize_question(alias)] == [doc], alias


@pytest.mark.parametrize(
    ("question", "clause_id"),
    [
        ("第十四号准则第五条", "CAS-14-收入/第五条"),
        ("企业会计准则第14号第五条说了什么", "CAS-14-收入/第五条"),
        ("收入准则第五条", "CAS-14-收入/第五条"),
        ("《建筑法》第二十二条", "建筑法/第二十二条"),
        ("建筑法第22条", "建筑法/第二十二条"),
        ("中华人民共和国会计法第十条", "会计法/第十条"),
        ("增值税条例第十二条规定的征收率", "增值税暂行条例/第十二条"),
        ("4号准则第五条", "CAS-4-固定资产/第五条"),
    ],
)
def test_named_articles_resolve_to_clause_ids(question, clause_id):
    match = DirectResolver(AliasTable(DOCS), ARTICLES).resolve(question)
    assert match.clause_ids == [clause_id]


def test_named_documents_without_article_and_articles_without_document():
    resolver = DirectResolver(AliasTable(DOCS), ARTICLES)
    guide = resolver.resolve("收入准则应用指南里合同怎么识别")
    assert guide.doc_ids == ["CAS-14-收入-应用指南"] and guide.clause_ids == []
    assert resolver.resolve("第五条规定了什么").clause_ids == []  # which document? none named
    both = resolver.resolve("存货准则第五条和收入准则第五条有什么不同")
    assert both.clause_ids == ["CAS-1-存货/第五条", "CAS-14-收入/第五条"]
    # not 4号准则 inside 14号准则
    assert resolver.resolve("14号准则第五条").clause_ids == ["CAS-14-收入/第五条"]
