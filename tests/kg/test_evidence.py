"""GraphEvidence against a real Neo4j: what the verifier sees of cited clauses, and their versions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg.evidence import GraphEvidence
from kg.types import EntityRecord, Extraction, TripleRecord
from kg.verifier import Verifier
from kg.writer import GraphWriter

pytestmark = pytest.mark.neo4j

DOC = "JSGL"
TITLE = "工程价款结算管理办法"
V1 = {
    "第一条": "为规范工程价款结算，制定本办法。",
    "第二条": "项目部应当在收到施工单位提交的进度款申请后十四日内审核完毕，并报财务部门复核。",
    "第三条": "质量保证金按结算总价的百分之三预留。",
}
# Version 2 of the manual: 第二条 shortened to 十日, 第三条 dropped (retired).
V2 = {"第一条": V1["第一条"], "第二条": "项目部应当在收到施工单位提交的进度款申请后十日内审核完毕。"}
SURFACE = {"第二条": ("十四日", "14日"), "第三条": ("百分之三", "3%")}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _tree(texts: dict[str, str]) -> DocumentTree:
    chapter = SectionNode(f"{DOC}/第一章", "第一章", "总则", 1, 0, None)
    part = SectionNode(f"{DOC}/第一章/第一节", "第一节", "进度款", 2, 1, chapter.section_id)
    clauses = [
        ClauseNode(f"{DOC}/{num}", num, i + 1, f"{num} {text}", i + 1, i + 1, part.section_id, _sha(text))
        for i, (num, text) in enumerate(texts.items())
    ]
    return DocumentTree(
        doc_id=DOC,
        title=TITLE,
        kind="md",
        source_path=Path(f"/tmp/{DOC}.md"),
        sha256=_sha("".join(texts.values())),
        pages=len(texts),
        ocr_pages=0,
        sections=[chapter, part],
        clauses=clauses,
        tables=[],
    )


def _extraction(texts: dict[str, str]) -> Extraction:
    triples = []
    for num, text in texts.items():
        if num == "第二条":
            surface, value = ("十日", "10日") if "十日内" in text and "十四日" not in text else SURFACE[num]
            triples.append(
                TripleRecord(
                    _sha(num + value)[:16], f"{DOC}/{num}", "项目部", "期限", value, {"surface": surface},
                    subject_entity="party:项目部",
                )
            )  # fmt: skip
        elif num == "第三条":
            surface, value = SURFACE[num]
            triples.append(
                TripleRecord(
                    _sha(num)[:16], f"{DOC}/{num}", "质量保证金", "比例", value, {"surface": surface}
                )
            )
    return Extraction(
        triples=triples,
        entities=[EntityRecord("party:项目部", "项目部", "party")],
        mentions=[(f"{DOC}/第二条", "party:项目部")],
    )


@pytest.fixture
def graph(clean_graph):
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    writer.write_document(_tree(V1), _extraction(V1))
    return clean_graph


def test_fetch_returns_clause_document_path_and_triples(graph):
    found = GraphEvidence(graph).fetch(
        [f"{DOC}/第二条", f"{DOC}/第三条", f"{DOC}/第九十九条", f"{DOC}/第二条"]
    )
    assert set(found) == {f"{DOC}/第二条", f"{DOC}/第三条"}  # the unknown id is absent, not an error
    c = found[f"{DOC}/第二条"]
    assert (c.clause_id, c.version, c.status, c.doc_id, c.doc_version) == (
        f"{DOC}/第二条",
        1,
        "active",
        DOC,
        1,
    )
    assert c.text == f"第二条 {V1['第二条']}"
    assert (c.doc_title, c.number, c.page_start, c.page_end) == (TITLE, "第二条", 2, 2)
    assert c.section_path == ["第一章 总则", "第一节 进度款"]
    (t,) = c.triples
    assert (t.subject, t.predicate, t.object, t.qualifiers) == (
        "项目部",
        "期限",
        "14日",
        {"surface": "十四日"},
    )
    assert t.subject_type == "party" and t.object_type is None
    assert [t.object for t in found[f"{DOC}/第三条"].triples] == ["3%"]


def test_fetch_of_nothing_is_empty(graph):
    assert GraphEvidence(graph).fetch([]) == {}
    assert GraphEvidence(graph).fetch_versions([]) == {}


def test_changed_rewrite_keeps_old_version_fetchable(graph):
    GraphWriter(graph).write_document(_tree(V2), _extraction(V2))
    evidence = GraphEvidence(graph)

    latest = evidence.fetch([f"{DOC}/第二条", f"{DOC}/第三条"])
    assert (latest[f"{DOC}/第二条"].version, latest[f"{DOC}/第二条"].status) == (2, "active")
    assert "十日内" in latest[f"{DOC}/第二条"].text
    assert [t.object for t in latest[f"{DOC}/第二条"].triples] == ["10日"]
    assert latest[f"{DOC}/第二条"].doc_version == 2
    # a clause that vanished from the document is still known, as retired
    assert (latest[f"{DOC}/第三条"].version, latest[f"{DOC}/第三条"].status) == (1, "retired")

    old = evidence.fetch_versions([(f"{DOC}/第二条", 1), (f"{DOC}/第二条", 2), (f"{DOC}/第二条", 7)])
    assert set(old) == {(f"{DOC}/第二条", 1), (f"{DOC}/第二条", 2)}
    v1 = old[(f"{DOC}/第二条", 1)]
    assert (v1.status, v1.text, v1.doc_version) == ("superseded", f"第二条 {V1['第二条']}", 1)
    assert [t.object for t in v1.triples] == ["14日"]  # the triples of that version, not the new ones
    assert old[(f"{DOC}/第二条", 2)].status == "active"


def test_verify_end_to_end_through_the_graph(graph):
    GraphWriter(graph).write_document(_tree(V2), _extraction(V2))
    verifier = Verifier(GraphEvidence(graph))

    ok = verifier.verify(f"项目部应在收到进度款申请后10天内审核完毕[[{DOC}/第二条]]。")
    assert ok.verified, ok.unsupported
    assert ok.citations[0].version == 2 and "十日内审核完毕" in ok.citations[0].quote

    stale = verifier.verify(f"项目部应当在收到进度款申请后十四日内审核完毕[[{DOC}/第二条]]。")
    assert {(a.kind, a.normalized) for a in stale.unsupported} == {("duration", "14日")}

    retired = verifier.verify(f"质量保证金按结算总价的3%预留[[{DOC}/第三条]]。")
    assert not retired.verified
    assert {(a.kind, a.normalized) for a in retired.unsupported} == {("citation", f"{DOC}/第三条")}
    assert retired.citations[0].resolved and not retired.citations[0].active

    invented = verifier.verify(f"质量保证金按结算总价的3%预留[[{DOC}/第八条]]。")
    assert ("citation", f"{DOC}/第八条") in {(a.kind, a.normalized) for a in invented.unsupported}


@pytest.mark.filterwarnings("ignore")
def test_unreachable_graph_raises_graph_unavailable():
    import socket

    from neo4j import GraphDatabase

    from kgqa.errors import GraphUnavailable

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uri = f"bolt://127.0.0.1:{port}"
    with (
        GraphDatabase.driver(uri, auth=None, connection_timeout=1, max_transaction_retry_time=0.2) as driver,
        pytest.raises(GraphUnavailable, match="kgqa neo4j start"),
    ):
        Verifier(GraphEvidence(driver)).verify("项目部应当审核完毕[[JSGL/第二条]]。")


def test_the_snapshot_holds_what_the_graph_says_and_serves_it_without_a_read(graph):
    from kg.evidence import SnapshotEvidence

    ids = [f"{DOC}/第一条", f"{DOC}/第二条", f"{DOC}/第三条"]
    evidence = SnapshotEvidence(GraphEvidence(graph), refresh_s=0)
    snapshot = evidence.load()
    assert dict(snapshot.clauses) == GraphEvidence(graph).fetch(ids)  # the same evidence, all of it
    read = evidence.read(ids, {f"{DOC}/第二条": 1})
    assert read.from_graph == 0 and read.graph_version == snapshot.graph_version
    assert read.clauses == dict(snapshot.clauses)
    assert (
        evidence.fetch_versions([(f"{DOC}/第二条", 1)])[(f"{DOC}/第二条", 1)]
        is snapshot.clauses[f"{DOC}/第二条"]
    )


def test_the_snapshot_falls_back_to_the_graph_and_follows_an_edit(graph):
    from kg.evidence import SnapshotEvidence

    evidence = SnapshotEvidence(GraphEvidence(graph), refresh_s=0)
    old = evidence.load()
    GraphWriter(graph).write_document(_tree(V2), _extraction(V2))  # 第二条 v2, 第三条 retired
    # before a refresh the snapshot still says version 1; "as it reads now" (audit) reads the graph
    assert evidence.fetch([f"{DOC}/第二条"])[f"{DOC}/第二条"].version == 1
    assert evidence.fetch_latest([f"{DOC}/第二条"])[f"{DOC}/第二条"].version == 2
    # until it refreshes: retrieval handed out version 2, which the snapshot lacks -> the graph
    read = evidence.read([f"{DOC}/第二条", f"{DOC}/第九十九条"], {f"{DOC}/第二条": 2})
    assert read.from_graph == 2 and read.clauses[f"{DOC}/第二条"].version == 2
    assert f"{DOC}/第九十九条" not in read.clauses
    assert evidence.refresh() is True and evidence.refresh() is False
    assert evidence.snapshot.graph_version > old.graph_version
    assert evidence.snapshot.graph_version == GraphEvidence(graph).graph_version()  # the version refresh read
    now = evidence.read([f"{DOC}/第二条", f"{DOC}/第三条"], {f"{DOC}/第二条": 2})
    assert now.from_graph == 1  # 第三条 is retired: not in the snapshot, read (and reported) as retired
    assert now.graph_version == evidence.snapshot.graph_version
    assert now.clauses[f"{DOC}/第三条"].status == "retired"
    assert [t.object for t in now.clauses[f"{DOC}/第二条"].triples] == ["10日"]
    # the old version is still reachable for an audit trace
    assert "十四日" in evidence.fetch_versions([(f"{DOC}/第二条", 1)])[(f"{DOC}/第二条", 1)].text


def test_the_refresh_thread_ends_when_its_driver_is_closed(graph, neo4j_server):
    """A service whose driver was closed without stopping its evidence must not retry forever."""
    import time

    from neo4j import GraphDatabase

    from kg.evidence import SnapshotEvidence

    driver = GraphDatabase.driver(neo4j_server.bolt_uri, auth=None)
    evidence = SnapshotEvidence(GraphEvidence(driver), refresh_s=0.05)
    evidence.start()
    assert evidence.refreshing and evidence.snapshot is not None
    driver.close()
    deadline = time.monotonic() + 30
    while evidence.refreshing and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not evidence.refreshing
    assert evidence.snapshot is not None  # what it had stays usable
