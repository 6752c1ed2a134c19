"""GraphSource reads the snapshot dataset generation works from, out of a real ingested graph.

The graph holds our own manuals (PDF, DOCX with the appendix deadline table, MD with a table) and
one corpus law, ingested once for the module; the last test re-ingests a changed copy of the MD
guide to check ``changed_since``.
"""

from __future__ import annotations

import shutil

import pytest
from neo4j import GraphDatabase

from kg.corpus import ClauseContext
from kg.reader import GraphReader
from kgqa.errors import GraphUnavailable
from training.datagen.source import GraphSource, appendix_clause, table_clause

LAW = "laws/会计法(2024-06-28).md"
GL = "工程项目价款结算成本列账管理手册"
YW = "工程项目价款结算业务手册"
BX = "项目部费用报销操作指引"


def _ingest(neo4j_server, driver, home, paths, replace=()):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    settings = Settings(neo4j_uri=neo4j_server.bolt_uri, home=home)
    report = build_ingest_service(settings, driver).ingest(paths, replace=replace)
    assert report.ok, report.failed
    return report


@pytest.fixture(scope="module")
def graph(neo4j_server, neo4j_driver, samples_dir, corpus_dir, tmp_path_factory):
    """The session graph emptied, then the three sample manuals and 会计法 ingested once."""
    with neo4j_driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    home = tmp_path_factory.mktemp("datagen-source-home")
    _ingest(neo4j_server, neo4j_driver, home, [samples_dir / "manuals", corpus_dir / LAW])
    return home


@pytest.fixture(scope="module")
def snapshot(graph, neo4j_driver):
    return GraphSource(neo4j_driver).snapshot()


def test_every_active_clause_is_read_once_at_the_graph_version(snapshot, neo4j_driver):
    stats = GraphReader(neo4j_driver).stats()
    assert len(snapshot.clauses) == stats.clause_status["active"]
    assert snapshot.graph_version == stats.graph_version > 0
    assert snapshot.changed_since is None
    assert {c.doc_id for c in snapshot.clauses.values()} == {GL, YW, BX, "会计法"}
    clause = snapshot.clauses[f"{GL}/第三十六条"]
    assert clause.text.startswith("第三十六条") and "审批权限表如下" in clause.text
    assert clause.doc_title == "工程项目价款结算（成本列账）管理手册（2025年版）"
    assert clause.version == 1 and clause.page_start >= 1


def test_triples_of_the_active_version_with_parsed_qualifiers(snapshot, neo4j_driver):
    reader = GraphReader(neo4j_driver)
    cid = f"{YW}/第八条"
    graph_triples = {(t.subject, t.predicate, t.object) for t in reader.clause(cid).triples}
    mine = snapshot.clauses[cid].triples
    assert {(t.subject, t.predicate, t.object) for t in mine} == graph_triples
    durations = [t for t in mine if t.predicate == "期限"]
    assert durations and all(isinstance(t.qualifiers, dict) for t in mine)
    assert any(t.qualifiers.get("surface") == "十四日内" for t in durations)
    assert sum(len(c.triples) for c in snapshot.clauses.values()) > 200


def test_section_paths_match_the_reader(snapshot, neo4j_driver):
    reader = GraphReader(neo4j_driver)
    for cid in (f"{GL}/第三十六条", f"{YW}/第八条", f"{BX}/§4", "会计法/第二十五条"):
        assert list(snapshot.clauses[cid].section_path) == reader.clause(cid).section_path
    assert snapshot.clauses[f"{GL}/第三十六条"].section_path == ("第五章 审批权限",)
    assert snapshot.clauses[f"{BX}/§4"].section_path == ("差旅费标准",)


def test_items_references_and_neighbours(snapshot):
    steps = snapshot.clauses[f"{YW}/第八条"].items
    assert len(steps) == 3
    assert steps[0].startswith("商务合约部在七日内") and steps[2].startswith("项目经理在二日内")
    assert f"{YW}/第八条" in snapshot.clauses[f"{GL}/第十五条"].refers_to  # across the two manuals
    assert f"{GL}/第三十五条" in snapshot.clauses[f"{YW}/第十二条"].refers_to
    assert all(r in snapshot.clauses for c in snapshot.clauses.values() for r in c.refers_to)
    assert set(snapshot.clauses[f"{GL}/第三十六条"].neighbours) == {f"{GL}/第三十五条", f"{GL}/第三十七条"}
    for clause in snapshot.clauses.values():
        for n in clause.neighbours:
            assert snapshot.clauses[n].section_path == clause.section_path


def test_tables_are_cited_through_the_clause_they_belong_to(snapshot):
    tables = {t.table_id: t for t in snapshot.tables}
    approval = tables[f"{GL}/表1"]  # PDF: 第三十六条 "审批权限表如下：" then the table
    assert approval.clause_id == f"{GL}/第三十六条"
    assert approval.header == ("事项", "金额区间", "审批人", "时限")
    assert ("分包进度款支付", "超过一千万元", "总经理办公会", "十个工作日") in approval.rows
    deadlines = tables[f"{YW}/表1"]  # DOCX appendix table, named by 第十二条 "见本手册附表1"
    assert deadlines.caption == "附表1 结算业务办理时限表"
    assert deadlines.clause_id == f"{YW}/第十二条" and len(deadlines.rows) >= 10
    assert tables[f"{BX}/表1"].clause_id == f"{BX}/§4"  # MD: the paragraph announcing 如下表
    assert tables[f"{GL}/表3"].clause_id is None  # 附表2: no clause of the manual names it
    assert all(t.doc_title and t.section_path for t in snapshot.tables)


def test_outlines_list_the_headings_in_order(snapshot):
    outline = snapshot.outlines[GL]
    assert outline.title == "工程项目价款结算（成本列账）管理手册（2025年版）"
    assert outline.sections[:2] == ("序言", "第一章 总则")  # the synthetic preamble section, named once
    chapters = [s for s in outline.sections if s.startswith("第") and "章" in s[:4]]
    assert len(chapters) == 7
    assert outline.sections.index("第五章 审批权限") > outline.sections.index("第四章 成本列账")
    assert snapshot.outlines[BX].sections[:3] == ("序言", "适用范围", "报销前的准备")
    assert set(snapshot.outlines) == {GL, YW, BX, "会计法"}


def test_table_clause_rule_without_a_graph():
    rows = [
        ClauseContext("D/第一条", ordinal=1, page_start=1, text="总则。"),
        ClauseContext("D/第二条", ordinal=2, page_start=2, text="审批期限见下表："),
        ClauseContext("D/第三条", ordinal=3, page_start=2, text="其他事项。"),
        ClauseContext("D/第四条", ordinal=4, page_start=4, text="附则。"),
    ]
    assert table_clause(rows, 2) == "D/第二条"  # the announcing clause, not the last on the page
    assert table_clause(rows, 3) == "D/第二条"
    assert table_clause(rows[:1] + rows[2:], 3) == "D/第三条"  # else the last one before it
    assert table_clause(rows[3:], 1) == "D/第四条"  # else the section's first clause
    assert table_clause([], 1) is None
    assert appendix_clause([*rows, ClauseContext("D/第五条", ordinal=5, text="见本办法附表1。")], ["附表1"]) == "D/第五条"
    assert appendix_clause([ClauseContext("D/第六条", ordinal=6, text="按《其他办法》附表1设置。")], ["附表1"]) is None
    assert appendix_clause([ClauseContext("D/第七条", ordinal=7, text="见附表12。")], ["附表1"]) is None


def test_unreachable_graph_raises_graph_unavailable():
    with (
        GraphDatabase.driver("bolt://127.0.0.1:1", auth=None, max_transaction_retry_time=0.5) as driver,
        pytest.raises(GraphUnavailable, match="not reachable"),
    ):
        GraphSource(driver).snapshot()


def test_since_names_exactly_the_changed_clause(graph, snapshot, neo4j_server, neo4j_driver, samples_dir, tmp_path):
    """Runs last: it changes one paragraph of the MD guide and re-ingests it."""
    before = snapshot.graph_version
    source = samples_dir / "manuals" / "费用报销操作指引.md"
    changed = tmp_path / source.name
    shutil.copy(source, changed)
    text = changed.read_text(encoding="utf-8")
    assert "每人借支的备用金余额不超过二万元" in text
    changed.write_text(text.replace("每人借支的备用金余额不超过二万元", "每人借支的备用金余额不超过三万元"), "utf-8")
    _ingest(neo4j_server, neo4j_driver, graph, [changed], replace=[BX])  # a copy elsewhere replaces it

    after = GraphSource(neo4j_driver).snapshot(since=before)
    assert after.graph_version > before
    assert after.changed_since == frozenset({f"{BX}/§5"})
    assert "三万元" in after.clauses[f"{BX}/§5"].text and after.clauses[f"{BX}/§5"].version == 2
    assert GraphSource(neo4j_driver).snapshot(since=after.graph_version).changed_since == frozenset()
