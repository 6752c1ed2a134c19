"""kg/changes.py against the real Neo4j: seqs, ON edges, the graph version, one transaction."""

from __future__ import annotations

import json
import threading

import pytest

from kg.changes import Author, Change, Op, append_changes
from kg.session import GraphSession
from kg.writer import GraphWriter

AUTHOR = Author("key-1234", "editor", "typo in the amount")


def _seed(tx) -> None:
    tx.run("CREATE (:Document {doc_id: 'D'}), (:Clause {clause_id: 'D/第一条', version: 1}), "
           "(:Clause {clause_id: 'D/第一条', version: 2})").consume()  # fmt: skip


def test_ops_keep_their_stored_names():
    # Change.op values are data: the datagen query and every stored log read them by these names.
    assert {op.value for op in Op} >= {"clause.add", "clause.update", "clause.retire", "document.replace"}
    assert Op.CLAUSE_UPDATE.target_kind == "clause" and Op.DOCUMENT_REPLACE.target_kind == "document"


def test_changes_get_consecutive_seqs_and_point_at_their_target(clean_graph):
    graph = GraphSession(clean_graph)
    graph.write_tx(_seed)
    changes = [
        Change(
            Op.CLAUSE_UPDATE, "D/第一条", 2, before={"version": 1}, after={"version": 2, "text": "十五日"}
        ),
        Change(Op.DOCUMENT_REPLACE, "D", before={"source_path": "a.md"}, after={"source_path": "b.md"}),
    ]
    version = graph.write_tx(append_changes, changes, AUTHOR, at="2026-01-01T00:00:00+00:00")
    assert version == 2
    rows = graph.read(
        "MATCH (c:Change) OPTIONAL MATCH (c)-[:ON]->(n) "
        "RETURN c {.*} AS c, labels(n) AS labels, n.version AS v ORDER BY c.seq"
    )
    first, second = (r["c"] for r in rows)
    assert (first["seq"], first["op"], first["target_id"]) == (1, "clause.update", "D/第一条")
    assert (rows[0]["labels"], rows[0]["v"]) == (["Clause"], 2)  # the version it produced, not v1
    assert json.loads(first["after_json"]) == {"version": 2, "text": "十五日"}  # CJK kept readable
    assert (second["seq"], rows[1]["labels"], second["after_json"]) == (
        2,
        ["Document"],
        '{"source_path": "b.md"}',
    )
    assert {(c["actor"], c["role"], c["reason"]) for c in (first, second)} == {
        ("key-1234", "editor", "typo in the amount")
    }
    # nothing to append: the graph version is reported unchanged
    assert graph.write_tx(append_changes, [], AUTHOR, at="x") == 2


def test_a_failed_transaction_leaves_no_change_and_no_seq(clean_graph):
    graph = GraphSession(clean_graph)

    def fails(tx) -> None:
        append_changes(tx, [Change(Op.CLAUSE_ADD, "D/第九条", 1)], AUTHOR, at="x")
        raise RuntimeError("the edit itself failed")

    with pytest.raises(RuntimeError):
        graph.write_tx(fails)
    assert graph.read("MATCH (c:Change) RETURN count(c) AS n")[0]["n"] == 0
    assert graph.write_tx(append_changes, [Change(Op.CLAUSE_ADD, "D/第九条", 1)], AUTHOR, at="x") == 1


def test_concurrent_writers_get_disjoint_ranges(clean_graph):
    GraphWriter(clean_graph).ensure_schema()  # the unique Sequence name makes the first MERGE safe
    graph = GraphSession(clean_graph)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for _ in range(5):
                batch = [Change(Op.CLAUSE_ADD, f"D/{n}-{i}", 1) for i in range(3)]
                graph.write_tx(append_changes, batch, AUTHOR, at="x")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = [r["seq"] for r in graph.read("MATCH (c:Change) RETURN c.seq AS seq ORDER BY seq")]
    assert seqs == list(range(1, 61))
    assert graph.read("MATCH (s:Sequence {name: 'change'}) RETURN s.value AS v")[0]["v"] == 60
