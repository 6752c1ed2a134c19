"""GraphWriter against a real Neo4j: idempotence, versioning, references, atomicity."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from ingest.types import ClauseNode, DocumentTree, SectionNode, TableNode
from kg.reader import GraphReader, ReferenceIn, ReferenceOut
from kg.types import EntityRecord, Extraction, ReferenceRecord, TripleRecord
from kg.writer import GraphWriter
from kgqa.errors import DocumentConflict

pytestmark = pytest.mark.neo4j


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _tree(texts: dict[str, str], doc_id: str = "TEST-1", title: str = "测试手册") -> DocumentTree:
    sec = SectionNode(f"{doc_id}/第一章", "第一章", "总则", 1, 0, None)
    clauses = [
        ClauseNode(f"{doc_id}/{num}", num, i + 1, text, i + 1, i + 1, sec.section_id, _sha(text))
        for i, (num, text) in enumerate(texts.items())
    ]
    table = TableNode(
        f"{doc_id}/表1", sec.section_id, 1, "附表1 审批权限", ["事项", "审批人"], [["付款", "总经理"]]
    )
    return DocumentTree(
        doc_id=doc_id,
        title=title,
        kind="md",
        source_path=Path(f"/tmp/{doc_id}.md"),
        sha256=_sha("".join(texts.values())),
        pages=len(texts),
        ocr_pages=0,
        sections=[sec],
        clauses=clauses,
        tables=[table],
    )


def _extraction(tree: DocumentTree) -> Extraction:
    triples = [
        TripleRecord(
            triple_id=_sha(c.clause_id)[:16],
            clause_id=c.clause_id,
            subject="项目部",
            predicate="期限",
            object="14日",
            qualifiers={"surface": "十四日"},
            subject_entity="party:项目部",
        )
        for c in tree.clauses
    ]
    refs = [ReferenceRecord(tree.clauses[-1].clause_id, "clause", tree.clauses[0].clause_id, "本手册第一条")]
    return Extraction(
        triples=triples,
        entities=[EntityRecord("party:项目部", "项目部", "party")],
        references=refs,
        mentions=[(c.clause_id, "party:项目部") for c in tree.clauses],
    )


TEXTS = {
    "第一条": "为规范工程价款结算，制定本手册。",
    "第二条": "项目部应当在收到计量报告后十四日内完成审核。",
    "第三条": "本手册第一条所称结算，包括进度款结算和竣工结算。",
}


def _counts(driver) -> dict[str, int]:
    rows, _, _ = driver.execute_query("MATCH (n) RETURN labels(n)[0] AS l, count(*) AS n")
    return {r["l"]: r["n"] for r in rows}


def test_unchanged_reingest_writes_nothing(clean_graph):
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    tree = _tree(TEXTS)
    first = writer.write_document(tree, _extraction(tree))
    assert first.status == "created" and first.clauses_added == 3
    assert first.graph_version == 3  # one Change per added clause
    before = _counts(clean_graph)
    second = writer.write_document(tree, _extraction(tree))
    assert second.status == "unchanged"
    assert _counts(clean_graph) == before
    assert second.graph_version == first.graph_version


def test_changed_clause_is_versioned_and_old_text_kept(clean_graph):
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    reader = GraphReader(clean_graph)
    tree = _tree(TEXTS)
    writer.write_document(tree, _extraction(tree))
    changed = dict(TEXTS)
    changed["第二条"] = "项目部应当在收到计量报告后七日内完成审核。"
    del changed["第三条"]
    tree2 = _tree(changed)
    result = writer.write_document(tree2, _extraction(tree2))
    assert (result.status, result.clauses_updated, result.clauses_retired, result.clauses_unchanged) == (
        "updated",
        1,
        1,
        1,
    )
    assert result.graph_version == 5  # 3 adds + 1 update + 1 retire

    view = reader.clause("TEST-1/第二条")
    assert view.version == 2 and "七日" in view.text
    assert [h.status for h in view.history] == ["superseded", "active"]
    old = reader.clause("TEST-1/第二条", version=1)
    assert "十四日" in old.text and old.status == "superseded"
    rows, _, _ = clean_graph.execute_query(
        "MATCH (n:Clause {clause_id: $id, version: 2})-[:SUPERSEDES]->(o:Clause {version: 1}) RETURN count(*) AS n",
        id="TEST-1/第二条",
    )
    assert rows[0]["n"] == 1
    # one Change node per changed clause, pointing at the version it produced
    rows, _, _ = clean_graph.execute_query(
        "MATCH (c:Change)-[:ON]->(n:Clause) WHERE c.seq > 3 RETURN c.op AS op, n.clause_id AS id ORDER BY c.seq"
    )
    assert [(r["op"], r["id"]) for r in rows] == [
        ("clause.update", "TEST-1/第二条"),
        ("clause.retire", "TEST-1/第三条"),
    ]
    # the first clause was untouched: still version 1
    assert reader.clause("TEST-1/第一条").version == 1
    # triples of the superseded version are kept but not active
    rows, _, _ = clean_graph.execute_query(
        "MATCH (t:Triple {clause_id: $id}) RETURN t.version AS v, t.status AS s ORDER BY v",
        id="TEST-1/第二条",
    )
    assert [(r["v"], r["s"]) for r in rows] == [(1, "superseded"), (2, "active")]


def test_references_resolve_across_documents_later(clean_graph):
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    tree = _tree(TEXTS)
    extraction = _extraction(tree)
    extraction.references.append(
        ReferenceRecord("TEST-1/第二条", "clause", "TEST-2/第一条", "《另一手册》第一条")
    )
    writer.write_document(tree, extraction)
    reader = GraphReader(clean_graph)
    view = reader.clause("TEST-1/第二条")
    assert view.unresolved_references == ["clause:TEST-2/第一条"]

    other = _tree({"第一条": "另一手册的第一条。"}, doc_id="TEST-2", title="另一手册")
    writer.write_document(other, Extraction())
    view = reader.clause("TEST-1/第二条")
    assert view.references_out == [ReferenceOut("TEST-2/第一条", "clause", "《另一手册》第一条")]
    assert reader.clause("TEST-1/第一条").references_in == [ReferenceIn("TEST-1/第三条", "本手册第一条")]


def test_a_number_shared_by_two_standards_links_both_once_they_arrive(clean_graph):
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    tree = _tree(TEXTS)
    extraction = Extraction(
        references=[
            ReferenceRecord(
                "TEST-1/第一条",
                "clause",
                "CAS-25/第三条",
                "《企业会计准则第25号》第三条",
                "企业会计准则第25号",
            ),
            ReferenceRecord(
                "TEST-1/第二条", "document", "CAS-25", "《企业会计准则第25号》", "企业会计准则第25号"
            ),
        ]
    )
    writer.write_document(tree, extraction)
    reader = GraphReader(clean_graph)
    assert reader.clause("TEST-1/第一条").unresolved_references == ["clause:CAS-25/第三条"]
    for doc_id, title in [
        ("CAS-25-保险合同", "企业会计准则第25号——保险合同"),
        ("CAS-25-原保险合同", "企业会计准则第25号——原保险合同（2006）"),
    ]:
        writer.write_document(_tree({"第三条": f"{title}第三条。"}, doc_id=doc_id, title=title), Extraction())
    first = reader.clause("TEST-1/第一条")
    assert sorted(r.target for r in first.references_out) == [
        "CAS-25-保险合同/第三条",
        "CAS-25-原保险合同/第三条",
    ]
    assert first.unresolved_references == []
    second = reader.clause("TEST-1/第二条")
    assert sorted(r.target for r in second.references_out) == ["CAS-25-保险合同", "CAS-25-原保险合同"]


def test_another_file_with_the_same_id_is_refused_and_replace_versions_it(clean_graph):
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    reader = GraphReader(clean_graph)
    first = _tree(TEXTS)
    writer.write_document(first, _extraction(first))
    before = _counts(clean_graph)

    other_texts = {"第一条": "另一份手册，同一个标题。", "第二条": TEXTS["第二条"]}
    other = replace(_tree(other_texts), source_path=Path("/elsewhere/测试手册.md"))
    with pytest.raises(DocumentConflict) as refused:
        writer.write_document(other, _extraction(other))
    assert refused.value.doc_id == "TEST-1" and "--replace TEST-1" in refused.value.reason
    assert "/tmp/TEST-1.md" in refused.value.reason
    assert _counts(clean_graph) == before  # nothing written, nothing retired
    assert reader.clause("TEST-1/第三条").status == "active"

    # the same file with changed content is the ordinary versioning path
    edited = _tree({**TEXTS, "第一条": "为规范工程价款结算和支付，制定本手册。"})
    assert writer.write_document(edited, _extraction(edited)).status == "updated"

    result = writer.write_document(other, _extraction(other), replace=True)
    assert (result.status, result.clauses_updated, result.clauses_retired) == ("replaced", 1, 1)
    assert reader.clause("TEST-1/第一条").text == "另一份手册，同一个标题。"
    assert reader.clause("TEST-1/第三条").status == "retired"
    rows, _, _ = clean_graph.execute_query(
        "MATCH (c:Change)-[:ON]->(n) WHERE c.seq > $v RETURN c.op AS op, c.before_json AS b, c.after_json AS a,"
        " coalesce(n.clause_id, n.doc_id) AS id ORDER BY c.seq",
        v=result.graph_version - 3,
    )
    assert [(r["op"], r["id"]) for r in rows] == [
        ("clause.update", "TEST-1/第一条"),
        ("clause.retire", "TEST-1/第三条"),
        ("document.replace", "TEST-1"),
    ]
    assert '"/tmp/TEST-1.md"' in rows[2]["b"] and '"/elsewhere/测试手册.md"' in rows[2]["a"]
    # from now on the document belongs to the new file
    with pytest.raises(DocumentConflict):
        writer.write_document(edited, _extraction(edited))


def test_failed_write_leaves_graph_untouched(clean_graph):
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    tree = _tree(TEXTS)
    writer.write_document(tree, _extraction(tree))
    before = _counts(clean_graph)
    # two clauses with the same id and version violate the uniqueness constraint mid-transaction
    broken = replace(
        tree,
        sha256="changed",
        clauses=tree.clauses + [replace(tree.clauses[0], clause_id="TEST-1/第九条")] * 2,
    )
    with pytest.raises(Exception):  # noqa: B017 - the driver's constraint error type is an implementation detail
        writer.write_document(broken, _extraction(broken))
    assert _counts(clean_graph) == before
    assert GraphReader(clean_graph).graph_version() == 3


def test_stats_and_table_rows(clean_graph):
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    tree = _tree(TEXTS)
    writer.write_document(tree, _extraction(tree))
    stats = GraphReader(clean_graph).stats()
    assert stats.labels["Clause"] == 3 and stats.labels["Table"] == 1 and stats.labels["Triple"] == 3
    assert stats.relationships["HAS_CLAUSE"] == 3 and stats.relationships["NEXT"] == 2
    assert stats.relationships["STATED_IN"] == 3 and stats.relationships["MENTIONS"] == 3
    rows, _, _ = clean_graph.execute_query("MATCH (:Section)-[:HAS_TABLE]->(t:Table) RETURN t.rows_json AS r")
    assert rows[0]["r"] == '[["付款", "总经理"]]'
