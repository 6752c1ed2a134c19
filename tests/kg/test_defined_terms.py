"""One definition pattern for graph, dataset and retrieval: the sample 业务手册 defines its terms
with ``本手册所称计量周期，是指…``, and all three must name the term 计量周期, not the reference.

The graph: the three sample manuals, ingested once for the module into the session's Neo4j (wiped
before and after, so modules after this one start from what they expect).
"""

from __future__ import annotations

import pytest

from kg.reader import TripleView

YW = "工程项目价款结算业务手册"
TERMS = {"计量周期", "工作日", "现场签证"}  # 第三条 (two) and 第二十三条 of the DOCX manual


def _wipe(driver) -> None:
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


@pytest.fixture(scope="module")
def settings(neo4j_server, tmp_path_factory):
    from kgqa.settings import Settings

    return Settings(neo4j_uri=neo4j_server.bolt_uri, home=tmp_path_factory.mktemp("defined-terms-home"))


@pytest.fixture(scope="module")
def graph(settings, neo4j_driver, samples_dir):
    from kgqa.wiring import build_ingest_service

    _wipe(neo4j_driver)
    report = build_ingest_service(settings, neo4j_driver).ingest(sorted((samples_dir / "manuals").iterdir()))
    assert report.ok, report.failed
    yield neo4j_driver
    _wipe(neo4j_driver)


def _definitions(settings, driver, clause_id: str) -> list[TripleView]:
    from kgqa.wiring import build_reader

    return [t for t in build_reader(settings, driver).clause(clause_id).triples if t.predicate == "定义"]


def test_the_graph_defines_the_term_not_the_reference(graph, settings):
    from kg import queries as q

    third = _definitions(settings, graph, f"{YW}/第三条")
    assert {t.subject for t in third} == {"计量周期", "工作日"}
    measure = next(t for t in third if t.subject == "计量周期")
    assert measure.object == "上月二十六日至本月二十五日的期间"
    assert [t.subject for t in _definitions(settings, graph, f"{YW}/第二十三条")] == ["现场签证"]
    records, _, _ = graph.execute_query(q.DEFINED_TERMS, max_chars=20)
    names = {r["name"] for r in records}
    assert names >= TERMS
    assert not any("所称" in n for n in names), names


def test_the_dataset_asks_about_the_term_the_graph_defines(graph, settings):
    from training.datagen.source import GraphSource
    from training.datagen.template_gen import TemplateGenConfig, TemplateGenerator
    from training.datagen.templates import TemplateBank

    snapshot = GraphSource(graph).snapshot()
    pairs, _ = TemplateGenerator(TemplateBank.load(), TemplateGenConfig(seed=7)).generate(snapshot)
    asked = [p.question for p in pairs if p.qtype == "definition" and f"{YW}/第三条" in p.gold]
    assert asked, "the manual's 第三条 yields definition questions"
    graph_terms = {t.subject for t in _definitions(settings, graph, f"{YW}/第三条")}
    for question in asked:
        assert "所称" not in question
        assert any(term in question for term in graph_terms), (question, graph_terms)
    assert any("计量周期" in question for question in asked)


def test_the_retrieval_tokenizer_keeps_defined_terms_whole(graph, settings):
    from serving.retrieval import IndexStore, RetrievalConfig

    config = RetrievalConfig(build_dense=False, stale_check_s=0)
    store = IndexStore(settings.home, graph, config)
    store.rebuild()
    index = store.current()
    assert set(index.tokenizer.user_words) >= TERMS
    unit = next(i for i, u in enumerate(index.units) if u.clause_id == f"{YW}/第三条")
    assert "计量周期" in index.tokenizer.tokens(index.units[unit].text)
    assert {"计量", "周期", "计量周期"} <= set(index.tokenizer.tokens("计量周期怎么算？"))
    hits = index.bm25.search(index.tokenizer.tokens("计量周期是哪几天？"), 3)
    assert f"{YW}/第三条" in [index.units[u].clause_id for u, _ in hits]

    reloaded = IndexStore(settings.home, graph, config).current()  # from disk, same graph version
    assert reloaded.built_at == index.built_at
    assert reloaded.tokenizer.user_words == index.tokenizer.user_words
