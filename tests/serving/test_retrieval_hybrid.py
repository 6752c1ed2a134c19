"""Hybrid retrieval against a real Neo4j holding three corpus documents, with a real encoder.

The module wipes the session server's graph, ingests CAS-14-收入, 建筑法 and 会计法 once, builds the
index once (the small corpus is embedded once; ``embed_chars`` is cut to keep that fast), and
empties the graph again when it is done, so modules after it start from what they expect.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DOCS = (
    "standards/企业会计准则第14号——收入（2017年修订）.md",
    "laws/建筑法(2019-04-23).md",
    "laws/会计法(2024-06-28).md",
)
ACCOUNTING_LAW = "laws/会计法(2024-06-28).md"
NEW_SENTENCE = "集团内部单位的会计年度可以按照母公司的财务年度调整到每年四月一日起算。"


def _wipe(driver) -> None:
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


@pytest.fixture(scope="module")
def graph(neo4j_server, neo4j_driver, corpus_dir):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    _wipe(neo4j_driver)
    report = build_ingest_service(Settings(neo4j_uri=neo4j_server.bolt_uri), neo4j_driver).ingest(
        [corpus_dir / d for d in DOCS]
    )
    assert report.ok, report.failed
    yield neo4j_driver
    _wipe(neo4j_driver)


@pytest.fixture(scope="module")
def encoder():
    from serving.retrieval.dense import Encoder

    return Encoder()


@pytest.fixture(scope="module")
def config():
    from serving.retrieval import RetrievalConfig

    return RetrievalConfig(build_dense=True, embed_chars=128, stale_check_s=0)


@pytest.fixture(scope="module")
def store(graph, encoder, config, tmp_path_factory):
    from serving.retrieval import IndexStore

    store = IndexStore(tmp_path_factory.mktemp("kgqa-home"), graph, config, encoder=encoder)
    report = store.rebuild()
    assert report.clauses > 150 and report.dense
    assert report.units - 5 <= report.embedded <= report.units  # identical texts are embedded once
    return store


@pytest.fixture(scope="module")
def retriever(store, graph):
    from serving.retrieval import HybridRetriever

    return HybridRetriever(store, graph)


def test_paraphrased_five_conditions_find_cas14_article_5(retriever):
    hits = retriever.retrieve(
        "跟客户签的合同要同时具备哪些条件，企业才可以在客户取得商品控制权时确认收入？", 5
    )
    assert "CAS-14-收入/第五条" in [h.clause_id for h in hits[:3]]
    top = next(h for h in hits if h.clause_id == "CAS-14-收入/第五条")
    assert top.doc_title.startswith("企业会计准则第14号") and top.version == 1
    assert top.section_path and "确认" in top.section_path[-1]
    assert {"bm25", "fulltext"} & set(top.sources)


@pytest.mark.parametrize(
    "question", ["《建筑法》第二十二条", "建筑法第22条的内容是什么", "中华人民共和国建筑法第二十二条"]
)
def test_named_article_comes_first(retriever, question):
    hits = retriever.retrieve(question, 5)
    assert hits[0].clause_id == "建筑法/第二十二条"
    assert hits[0].sources.get("direct") == 1
    assert hits[0].text.startswith("第二十二条")


def test_unanswerable_question_gets_no_contexts(retriever):
    assert retriever.retrieve("员工年终奖的个人所得税应该怎么计算？", 5) == []
    ranked = retriever.rank("出差住宿费每天的报销标准是多少？")
    assert not ranked.evidence and ranked.coverage < retriever.config.min_coverage


def test_graph_expansion_adds_neighbours_with_low_weight(retriever):
    ranked = retriever.rank("合同开始日不符合条件的合同要持续评估吗？")
    assert ranked.rankings.get("graph")
    # CAS-14-收入/第六条 refers to 第五条 ("不符合本准则第五条规定的合同"): expansion reaches it
    assert "CAS-14-收入/第五条" in ranked.rankings["graph"] or "CAS-14-收入/第五条" in [
        f.clause_id for f in ranked.fused[:5]
    ]
    top = ranked.fused[0]
    assert top.sources.keys() - {"graph"}, "a clause found only through the graph must not lead"


def test_index_persists_and_reloads_with_same_results(store, graph, config, encoder):
    from serving.retrieval import HybridRetriever, IndexStore

    questions = ["建设单位领取施工许可证后多久要开工？", "会计人员离职时怎么办理交接手续？"]
    before = [[h.clause_id for h in HybridRetriever(store, graph).retrieve(q, 5)] for q in questions]
    encoded = encoder.texts_encoded
    reloaded = IndexStore(store.dir.parent, graph, config, encoder=encoder)
    index = reloaded.load()
    assert index.graph_version == store.current().graph_version
    assert encoder.texts_encoded == encoded, "loading must not embed anything"
    after = [[h.clause_id for h in HybridRetriever(reloaded, graph).retrieve(q, 5)] for q in questions]
    assert after == before
    assert "建筑法/第九条" in before[0][:3] and before[1][0] == "会计法/第三十九条"


def test_update_after_reingest_embeds_only_the_changed_clause(
    store, graph, config, encoder, corpus_dir, tmp_path
):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service
    from serving.retrieval import HybridRetriever, IndexStore

    question = "集团内部单位的会计年度能不能按母公司财务年度从四月一日起算？"
    before = HybridRetriever(store, graph).retrieve(question, 3)
    assert all(NEW_SENTENCE not in h.text for h in before)
    old_index = store.current()

    changed = tmp_path / Path(ACCOUNTING_LAW).name
    shutil.copy(corpus_dir / ACCOUNTING_LAW, changed)
    text = changed.read_text(encoding="utf-8")
    original = "第十一条 会计年度自公历1月1日起至12月31日止。"
    assert original in text
    changed.write_text(text.replace(original, original + NEW_SENTENCE), encoding="utf-8")
    report = build_ingest_service(Settings(), graph).ingest([changed], replace=["会计法"])  # a copy elsewhere
    assert report.ok and report.ingested[0].clauses_updated == 1

    # a store started now sees the stale index on disk, warns and updates by itself
    fresh = IndexStore(store.dir.parent, graph, config, encoder=encoder)
    encoded = encoder.texts_encoded
    assert fresh.load().graph_version == report.graph_version
    assert encoder.texts_encoded - encoded == 1, "only the changed clause may be embedded again"

    update = store.update()
    assert update.embedded == 0  # the cache on disk already holds the new text
    assert old_index is not store.current() and old_index.graph_version < store.current().graph_version
    assert old_index.bm25.search(old_index.tokenizer.tokens("会计年度"), 3), "old snapshots keep working"
    hits = HybridRetriever(store, graph).retrieve(question, 3)
    assert hits[0].clause_id == "会计法/第十一条"
    assert NEW_SENTENCE in hits[0].text and hits[0].version == 2
