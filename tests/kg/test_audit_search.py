"""Auditors' reads on a real Neo4j: the trail filtered and paged, documents and their outline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg.audit import AnswerFilter, AuditCitation, AuditEntry, AuditStore
from kg.reader import GraphReader
from kg.types import Extraction
from kg.writer import GraphWriter
from kgqa.errors import NotFound

pytestmark = pytest.mark.neo4j


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _write_doc(driver) -> None:
    chapter = SectionNode("SRCH/第一章", "第一章", "总则", 1, 0, None)
    part = SectionNode("SRCH/第一节", "第一节", "审核", 2, 1, chapter.section_id)
    empty = SectionNode("SRCH/第二章", "第二章", "附则", 1, 2, None)
    texts = ["项目部应当在十四日内完成审核。", "单笔付款超过五十万元的，由总经理审批。"]
    clauses = [
        ClauseNode("SRCH/第一条", "第一条", 1, texts[0], 1, 1, chapter.section_id, _sha(texts[0])),
        ClauseNode("SRCH/第二条", "第二条", 2, texts[1], 2, 2, part.section_id, _sha(texts[1])),
    ]
    tree = DocumentTree(
        "SRCH",
        "检索测试手册",
        "md",
        Path("/tmp/srch.md"),
        _sha("".join(texts)),
        2,
        0,
        [chapter, part, empty],
        clauses,
        [],
    )
    writer = GraphWriter(driver)
    writer.ensure_schema()
    writer.write_document(tree, Extraction())


def _entry(i: int, *, actor: str, status: str, model: str, clause: str) -> AuditEntry:
    return AuditEntry(
        answer_id=f"srch-{i}",
        question=f"问题{i}",
        answer=f"答案{i}[[{clause}]]",
        status=status,
        model_id=model,
        graph_version=None,
        at=f"2026-11-2{i}T08:00:00.000+00:00",
        actor=actor,
        citations=[AuditCitation(clause, 1, "审核", 0, 2, 0.9, True)],
    )


@pytest.fixture
def trail(clean_graph) -> AuditStore:
    _write_doc(clean_graph)
    store = AuditStore(clean_graph)
    store.append(_entry(1, actor="key-a", status="VERIFIED", model="extractive", clause="SRCH/第一条"))
    store.append(_entry(2, actor="key-b", status="UNVERIFIED", model="sft-1", clause="SRCH/第二条"))
    store.append(_entry(3, actor="key-a", status="VERIFIED", model="sft-1", clause="SRCH/第二条"))
    store.append(_entry(4, actor="key-b", status="NO_EVIDENCE", model="extractive", clause="SRCH/第一条"))
    return store


def _ids(rows) -> list[str]:
    return [r.answer_id for r in rows]


def test_every_filter_narrows_the_trail_newest_first(trail):
    assert _ids(trail.search(AnswerFilter())) == ["srch-4", "srch-3", "srch-2", "srch-1"]
    assert _ids(trail.search(AnswerFilter(actor="key-a"))) == ["srch-3", "srch-1"]
    assert _ids(trail.search(AnswerFilter(status="VERIFIED"))) == ["srch-3", "srch-1"]
    assert _ids(trail.search(AnswerFilter(model_id="sft-1"))) == ["srch-3", "srch-2"]
    assert _ids(trail.search(AnswerFilter(clause_id="SRCH/第一条"))) == ["srch-4", "srch-1"]
    window = AnswerFilter(at_from="2026-11-22T00:00:00.000+00:00", at_to="2026-11-24T00:00:00.000+00:00")
    assert _ids(trail.search(window)) == ["srch-3", "srch-2"]
    both = AnswerFilter(actor="key-b", clause_id="SRCH/第二条", status="UNVERIFIED")
    assert _ids(trail.search(both)) == ["srch-2"]
    assert trail.search(AnswerFilter(actor="", status="")) == trail.search(AnswerFilter())  # blank = any


def test_listing_carries_the_cited_versions_and_pages_by_seq(trail):
    first = trail.search(AnswerFilter(), limit=2)
    assert _ids(first) == ["srch-4", "srch-3"]
    assert first[0].citations[0].clause_id == "SRCH/第一条" and first[0].citations[0].clause_version == 1
    assert first[0].graph_version > 0 and first[0].actor == "key-b" and first[0].seq == 4
    assert _ids(trail.search(AnswerFilter(), limit=2, before_seq=first[-1].seq)) == ["srch-2", "srch-1"]


def test_documents_and_their_outline(clean_graph):
    _write_doc(clean_graph)
    reader = GraphReader(clean_graph)
    docs = reader.documents()
    assert [(d.doc_id, d.title, d.clauses) for d in docs] == [("SRCH", "检索测试手册", 2)]
    outline = reader.outline("SRCH", preview_chars=6)
    (chapter,) = outline.sections  # 第二章 has no clause and is left out
    assert (chapter.number, chapter.title) == ("第一章", "总则")
    assert [c.clause_id for c in chapter.clauses] == ["SRCH/第一条"]
    assert chapter.clauses[0].preview == "项目部应当在"
    (part,) = chapter.children
    assert [c.number for c in part.clauses] == ["第二条"]
    with pytest.raises(NotFound):
        reader.outline("NOPE")
