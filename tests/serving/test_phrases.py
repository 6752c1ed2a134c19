"""The in-process full-text ranking: key terms matched as phrases of each unit's text."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.retrieval.phrases import PhraseIndex
from zhtext import fold

TEXTS = [
    "企业应当在履行了合同中的履约义务时确认收入。",
    "合同履约成本应当按照与该成本相关的商品收入确认相同的基础进行摊销。",
    "存货应当按照成本进行初始计量。",
    "企业为履行合同发生的成本，不属于其他企业会计准则规范范围的，应当作为合同履约成本确认为一项资产。"
    "合同履约成本在资产负债表中列示。",
    "ＩＦＲＳ第１５号规定的收入确认",
]


@pytest.fixture(scope="module")
def index() -> PhraseIndex:
    return PhraseIndex([fold(t) for t in TEXTS])


def _units(hits: list[tuple[int, float]]) -> list[int]:
    return [u for u, _ in hits]


def test_a_term_is_found_inside_longer_words(index):
    """履约 is one jieba token in neither 履约义务 nor 合同履约成本, but a phrase of both."""
    assert set(_units(index.search(["履约"], 10))) == {0, 1, 3}


def test_more_occurrences_and_a_shorter_text_rank_higher(index):
    assert set(_units(index.search(["合同履约成本"], 10))) == {1, 3}
    term = "合同履约成本"
    said_twice = dict(PhraseIndex([term + "。" + term, term + "。其他"]).search([term], 2))
    assert said_twice[0] > said_twice[1]
    padded = dict(PhraseIndex([term + "。", term + "。" + "其他内容" * 20]).search([term], 2))
    assert padded[0] > padded[1]


def test_a_term_weighs_what_its_bigrams_weigh_together(index):
    """Lucene's phrase weight: 合同履约成本 (five bigrams, two of them rare) outweighs 成本."""
    assert index.weight("合同履约成本") > 3 * index.weight("成本")
    # a single character weighs its own IDF; one no text holds weighs the most
    assert index.weight("租") == pytest.approx(math.log(1 + (len(TEXTS) + 0.5) / 0.5))
    assert index.weight("租") > index.weight("初") > index.weight("成")  # in none, one, three texts


def test_ids_are_the_callers(index):
    texts = [fold(t) for t in TEXTS]
    by_id = PhraseIndex(texts, ids=[10, 11, 12, 13, 14])
    assert [u - 10 for u, _ in by_id.search(["履约"], 5)] == _units(index.search(["履约"], 5))
    with pytest.raises(ValueError, match="5 texts but 2 ids"):
        PhraseIndex(texts, ids=[1, 2])


def test_rare_terms_weigh_more_than_common_ones(index):
    """成本 is in three units, 初始计量 in one: the unit with the rare term comes first."""
    hits = index.search(["成本", "初始计量"], 10)
    assert _units(hits)[0] == 2


def test_terms_are_folded_like_the_texts(index):
    """Full-width letters and digits in the question meet half-width ones and the other way round."""
    assert _units(index.search(["ifrs第15号"], 5)) == [4]
    assert _units(index.search([fold("ＩＦＲＳ")], 5)) == [4]


def test_no_match_spans_two_units_and_nothing_matches_nothing(index):
    assert index.search(["收入。合同"], 5) == []  # the end of unit 0 and the start of unit 1
    assert index.search(["租赁"], 5) == []
    assert index.search([], 5) == []
    assert index.search(["", "  "], 5) == []
    assert PhraseIndex([]).search(["收入"], 5) == []


def test_n_bounds_the_hits_and_repeated_terms_count_once(index):
    assert len(index.search(["企业", "成本", "收入"], 2)) == 2
    assert index.search(["成本", "成本"], 10) == index.search(["成本"], 10)


def test_threads_sharing_the_index_get_the_results_of_one(index):
    """Request threads share a snapshot's index and fill its postings cache at the same time."""
    queries = [["履约"], ["合同履约成本", "摊销"], ["成本", "初始计量"], ["收入", "资产"]] * 25
    fresh = PhraseIndex([fold(t) for t in TEXTS])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda q: fresh.search(q, 5), queries))
    assert results == [index.search(q, 5) for q in queries]


def test_no_match_spans_two_texts_and_blank_terms_match_nothing():
    """The texts are joined with a separator for one scan: a term across the join (or holding the
    separator) must find nothing, and a blank term must not score every text."""
    joined = PhraseIndex(["收入确认", "合同成本"])
    assert joined.search(["确认合同"], 5) == []
    assert joined.search(["确认\x00合同", "", "  "], 5) == []
    assert _units(joined.search(["确认"], 5)) == [0]
