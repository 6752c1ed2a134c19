"""The hash-chained audit trail on a real Neo4j: append, read back, and catch tampering."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg.audit import AuditCitation, AuditEntry, AuditStore
from kg.types import Extraction
from kg.writer import GraphWriter

pytestmark = pytest.mark.neo4j


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _write_doc(driver, text: str) -> None:
    sec = SectionNode("AUD/第一章", "第一章", "总则", 1, 0, None)
    clause = ClauseNode("AUD/第一条", "第一条", 1, text, 1, 1, sec.section_id, _sha(text))
    tree = DocumentTree(
        "AUD", "审计测试手册", "md", Path("/tmp/aud.md"), _sha(text), 1, 0, [sec], [clause], []
    )
    writer = GraphWriter(driver)
    writer.ensure_schema()
    writer.write_document(tree, Extraction())


def _entry(i: int, version: int = 1, quote: str = "十四日内") -> AuditEntry:
    return AuditEntry(
        answer_id=f"ans-{i}",
        question=f"问题{i}",
        answer=f"答案{i}[[AUD/第一条]]",
        status="VERIFIED",
        model_id="extractive",
        graph_version=1,
        at=f"2026-11-23T00:00:0{i}Z",
        actor="key-abc",
        citations=[AuditCitation("AUD/第一条", version, quote, 5, 9, 0.9, True)],
    )


@pytest.fixture
def store(clean_graph) -> AuditStore:
    _write_doc(clean_graph, "项目部应当在十四日内完成审核。")
    return AuditStore(clean_graph)


def test_append_get_and_citing(store, clean_graph):
    first = store.append(_entry(1))
    second = store.append(_entry(2))
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.record_hash and first.prev_hash == ""
    got = store.get("ans-2")
    assert got.entry == _entry(2) and got.record_hash == second.record_hash
    citing = store.citing("AUD/第一条")
    assert [c.answer_id for c in citing] == ["ans-2", "ans-1"]
    assert store.verify_chain().ok and store.verify_chain().checked == 2


def test_trace_keeps_cited_version_after_clause_changes(store, clean_graph):
    store.append(_entry(1))
    _write_doc(clean_graph, "项目部应当在七日内完成审核。")  # the clause changes: version 2 is active now
    rows, _, _ = clean_graph.execute_query(
        "MATCH (:Answer {answer_id: 'ans-1'})-[r:CITES]->(c:Clause) RETURN c.version AS v, c.status AS s, c.text AS t"
    )
    assert [(r["v"], r["s"]) for r in rows] == [(1, "superseded")]
    assert "十四日" in rows[0]["t"]


@pytest.mark.parametrize(
    ("tamper", "bad_seq"),
    [
        ("MATCH (a:Answer {answer_id: 'ans-2'}) SET a.answer = '篡改后的答案'", 2),
        ("MATCH (:Answer {answer_id: 'ans-2'})-[r:CITES]->() SET r.quote = '二十日内'", 2),
        ("MATCH (a:Answer {answer_id: 'ans-1'}) SET a.actor = 'key-other'", 1),
        ("MATCH (a:Answer {answer_id: 'ans-2'}) DETACH DELETE a", 2),
        ("MATCH (a:Answer {answer_id: 'ans-3'}) DETACH DELETE a", 3),
    ],
)
def test_tampering_is_named(store, clean_graph, tamper, bad_seq):
    for i in (1, 2, 3):
        store.append(_entry(i))
    assert store.verify_chain().ok
    clean_graph.execute_query(tamper)
    report = store.verify_chain()
    assert not report.ok
    assert report.first_bad_seq == bad_seq
    assert report.reason


@pytest.mark.parametrize("page", [1, 2, 3, 4])
def test_a_check_in_steps_is_the_whole_check(store, clean_graph, page):
    """Steps carrying (checked, last_hash) walk the same chain as one call, for any page size."""
    for i in (1, 2, 3):
        store.append(_entry(i))
    whole = store.verify_chain()
    assert (
        whole.ok and whole.done and whole.checked == 3 and whole.last_hash == store.get("ans-3").record_hash
    )
    step, seen = store.verify_chain_step(0, "", page), []
    while step.ok and not step.done:
        seen.append(step.checked)
        assert step.total == 3 and step.last_hash == store.get(f"ans-{step.checked}").record_hash
        step = store.verify_chain_step(step.checked, step.last_hash, page)
    assert step == whole
    assert seen == list(range(page, 3, page))  # a step stops at its page, not before
    clean_graph.execute_query("MATCH (a:Answer {answer_id: 'ans-3'}) SET a.answer = '篡改'")
    assert store.verify_chain_step(2, store.get("ans-2").record_hash, page).first_bad_seq == 3


def test_a_step_given_the_wrong_link_fails_instead_of_passing(store):
    for i in (1, 2):
        store.append(_entry(i))
    report = store.verify_chain_step(1, "0" * 64, 10)  # not the hash of record 1
    assert not report.ok and report.first_bad_seq == 2 and "prev_hash" in report.reason


def test_graph_version_is_stamped_inside_the_append(store, clean_graph):
    entry = _entry(1)
    entry.graph_version = None
    stored = store.append(entry)
    rows, _, _ = clean_graph.execute_query("MATCH (s:Sequence {name: 'change'}) RETURN s.value AS v")
    assert stored.entry.graph_version == rows[0]["v"] == 1
    assert store.get("ans-1").entry.graph_version == 1
    assert store.verify_chain().ok
