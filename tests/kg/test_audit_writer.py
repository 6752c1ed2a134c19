"""Answers appended in groups, durable before append() returns: journal, crash, replay, replicas.

Real Neo4j, real files, real processes: a writer killed with SIGKILL leaves its journal, the next
one replays it; two processes appending at once leave one valid chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg.audit import AuditCitation, AuditEntry, AuditStore
from kg.audit_writer import AuditJournal, AuditWriter, replay_orphans
from kg.types import Extraction
from kg.writer import GraphWriter
from kgqa.errors import AuditUnavailable, GraphUnavailable

pytestmark = pytest.mark.neo4j

REPO = Path(__file__).resolve().parents[2]


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


@pytest.fixture
def graph(clean_graph):
    text = "项目部应当在十四日内完成审核。"
    sec = SectionNode("AUD/第一章", "第一章", "总则", 1, 0, None)
    clause = ClauseNode("AUD/第一条", "第一条", 1, text, 1, 1, sec.section_id, _sha(text))
    tree = DocumentTree(
        "AUD", "审计测试手册", "md", Path("/tmp/aud.md"), _sha(text), 1, 0, [sec], [clause], []
    )
    writer = GraphWriter(clean_graph)
    writer.ensure_schema()
    writer.write_document(tree, Extraction())
    return clean_graph


def _entry(answer_id: str, graph_version: int | None = 1) -> AuditEntry:
    return AuditEntry(
        answer_id=answer_id,
        question=f"问题{answer_id}",
        answer=f"答案{answer_id}[[AUD/第一条]]",
        status="VERIFIED",
        model_id="extractive",
        graph_version=graph_version,
        at="2026-11-23T00:00:00Z",
        actor="key-abc",
        citations=[AuditCitation("AUD/第一条", 1, "十四日内", 5, 9, 0.9, True)],
    )


def _count(driver) -> int:
    records, _, _ = driver.execute_query("MATCH (a:Answer) RETURN count(a) AS n")
    return records[0]["n"]


def test_a_group_is_one_transaction_that_extends_the_chain_and_skips_present_ids(graph):
    store = AuditStore(graph)
    first = store.append(_entry("a0"))
    group = store.append_many([_entry(f"a{i}", graph_version=None) for i in range(1, 6)])
    assert [s.seq for s in group] == [2, 3, 4, 5, 6]
    assert group[0].prev_hash == first.record_hash
    assert all(b.prev_hash == a.record_hash for a, b in zip(group, group[1:], strict=False))
    assert all(s.entry.graph_version is not None for s in group)  # stamped in the transaction
    # appending again (a replayed journal) adds nothing and keeps the chain whole
    again = store.append_many([_entry("a3"), _entry("a6")])
    assert [s.entry.answer_id for s in again] == ["a6"] and again[0].seq == 7
    report = store.verify_chain()
    assert report.ok and report.checked == 7
    rows, _, _ = graph.execute_query(
        "MATCH (:Answer {answer_id: 'a4'})-[r:CITES]->(c) RETURN c.clause_id AS c"
    )
    assert [r["c"] for r in rows] == ["AUD/第一条"]


@pytest.mark.parametrize("journal", [False, True])
def test_concurrent_appends_are_grouped_durable_and_chained(graph, tmp_path, journal):
    writer = AuditWriter(AuditStore(graph), tmp_path / "journal" if journal else None)
    writer.start()
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            for i in range(10):
                writer.append(_entry(f"c{n}-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert writer.sync(30)
    assert _count(graph) == 80
    assert 1 <= writer.groups <= 80
    assert AuditStore(graph).verify_chain().ok
    assert writer.close() == 0
    if journal:  # every answer reached Neo4j: nothing is left to replay
        assert list((tmp_path / "journal").iterdir()) == []
    with pytest.raises(AuditUnavailable):
        writer.append(_entry("late"))


def test_answers_waiting_behind_a_write_go_to_neo4j_as_one_group(graph, tmp_path):
    """Grouping itself: answers buffered while a write holds the lock share one transaction."""
    writer = AuditWriter(AuditStore(graph), None)
    writer.start()
    writer._write_lock.acquire()  # a write in progress
    threads = [threading.Thread(target=writer.append, args=(_entry(f"g{i}"),)) for i in range(5)]
    for t in threads:
        t.start()
    while writer.pending < 5:
        threading.Event().wait(0.01)
    writer._write_lock.release()
    for t in threads:
        t.join()
    assert writer.groups == 1 and _count(graph) == 5
    assert AuditStore(graph).verify_chain().ok
    writer.close()


def _until_sync_waits(writer: AuditWriter) -> None:
    """Return once a ``sync()`` on another thread has begun waiting (60 s at most)."""
    deadline = time.monotonic() + 60
    while not writer._idle._waiters:
        assert time.monotonic() < deadline, "sync() never waited"
        threading.Event().wait(0.01)


def test_journaled_answers_linger_into_one_transaction_and_an_auditors_sync_flushes(graph, tmp_path):
    """The graph thread waits ``linger_s`` for answers to share a transaction; ``sync`` (an
    auditor's read) does not wait it out. A linger of an hour makes both visible: the answers
    journaled one after the other stay out of Neo4j, and sync brings them in as one group."""
    writer = AuditWriter(AuditStore(graph), tmp_path / "journal", linger_s=3600)
    writer.start()
    for i in range(6):
        writer.append(_entry(f"l{i}"))  # returns: durable in the journal
    assert _count(graph) == 0 and writer.groups == 0 and writer.pending == 6
    assert writer.sync(60)  # flushed, not lingered: an hour would time out
    assert _count(graph) == 6 and writer.groups == 1
    assert AuditStore(graph).verify_chain().ok
    assert writer.close() == 0


def test_an_answer_still_being_journaled_when_sync_begins_does_not_linger(graph, tmp_path):
    """The answer an auditor waits for may reach the graph thread after sync's signal (its journal
    fsync was still running): it must not wait out the linger then either."""
    writer = AuditWriter(AuditStore(graph), tmp_path / "journal", linger_s=3600)
    writer.start()
    in_fsync, fsync_may_end = threading.Event(), threading.Event()
    journal_write = writer._journal.write

    def slow_write(entries):  # noqa: ANN001, ANN202
        in_fsync.set()
        fsync_may_end.wait(60)
        return journal_write(entries)

    writer._journal.write = slow_write
    asker = threading.Thread(target=writer.append, args=(_entry("j0"),))
    asker.start()
    assert in_fsync.wait(60)
    synced: list[bool] = []
    reader = threading.Thread(target=lambda: synced.append(writer.sync(60)))
    reader.start()
    _until_sync_waits(writer)  # its flush signal already sent
    fsync_may_end.set()
    asker.join(60)
    reader.join(90)
    assert synced == [True] and _count(graph) == 1  # an hour's linger would have timed it out
    assert writer.close() == 0


def test_sync_waits_for_the_answers_before_it_not_for_those_that_came_after(graph, tmp_path):
    """Under steady load the writer is never idle; an auditor's read must not wait for answers
    returned after it began. Here those are held out of Neo4j until the read has returned (one
    answer per transaction, so that no group mixes the two)."""
    writer = AuditWriter(AuditStore(graph), tmp_path / "journal", max_batch=1)
    writer.start()
    earlier_in, later_in = threading.Event(), threading.Event()
    append_many = writer._store.append_many

    def held_append(entries):  # noqa: ANN001, ANN202
        (later_in if entries[0].answer_id.startswith("late") else earlier_in).wait(60)
        return append_many(entries)

    writer._store.append_many = held_append
    earlier = [writer.append(_entry(f"early{i}")).answer_id for i in range(3)]
    synced: list[bool] = []
    reader = threading.Thread(target=lambda: synced.append(writer.sync(60)))
    reader.start()
    _until_sync_waits(writer)
    for i in range(4):
        writer.append(_entry(f"late{i}"))
    earlier_in.set()
    reader.join(90)
    assert synced == [True]  # the later answers are still held: only the earlier were waited for
    rows, _, _ = graph.execute_query(
        "MATCH (a:Answer) WHERE a.answer_id IN $ids RETURN count(a) AS n", ids=earlier
    )
    assert rows[0]["n"] == 3 and _count(graph) == 3 and writer.pending == 4
    later_in.set()
    assert writer.sync(60) and _count(graph) == 7
    assert AuditStore(graph).verify_chain().ok
    writer.close()


def test_graph_mode_reports_an_unreachable_graph_to_the_caller(tmp_path):
    from neo4j import GraphDatabase

    from kg.breaker import CircuitBreaker
    from kg.guard import GuardedDriver

    with GraphDatabase.driver("bolt://127.0.0.1:1", connection_timeout=1) as dead:
        guarded = GuardedDriver(dead, CircuitBreaker(lambda: None, probe_interval_s=60), budget_s=0.5)
        writer = AuditWriter(AuditStore(guarded))
        writer.start()
        with pytest.raises(GraphUnavailable):
            writer.append(_entry("x"))
        writer.close()


_CRASHING_WRITER = r"""
import json, sys
from neo4j import GraphDatabase
from kg.audit import AuditCitation, AuditEntry, AuditStore
from kg.audit_writer import AuditWriter
from kgqa.logging import configure_logging

configure_logging("WARNING")  # the log goes to stderr; stdout carries the ids only
uri, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
driver = GraphDatabase.driver(uri, connection_timeout=1, max_transaction_retry_time=0)
writer = AuditWriter(AuditStore(driver), root, retry_s=0.2)
writer.start()
for i in range(n):
    entry = AuditEntry(
        answer_id=f"j{i}", question="问", answer="答[[AUD/第一条]]", status="VERIFIED",
        model_id="extractive", graph_version=1, at="2026-11-23T00:00:00Z", actor="key-abc",
        citations=[AuditCitation("AUD/第一条", 1, "十四日内", 5, 9, 0.9, True)],
    )
    writer.append(entry)
    sys.stdout.write(f"ID {entry.answer_id}\n")  # a client has it now
    sys.stdout.flush()
sys.stdin.readline()  # wait to be killed
"""


def _crash_after(uri: str, root: Path, n: int) -> list[str]:
    """A real process journals ``n`` answers against ``uri`` and is killed with SIGKILL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_WRITER, uri, str(root), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    received: list[str] = []
    while len(received) < n:
        line = proc.stdout.readline()
        assert line, "the writer process died"
        received.append(line.removeprefix("ID ").strip())
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    return received


def test_a_killed_writer_loses_no_answer_it_returned(graph, tmp_path):
    root = tmp_path / "journal"
    # Neo4j unreachable for the first process: its answers exist only in its journal when it dies
    received = _crash_after("bolt://127.0.0.1:1", root, 12)
    assert received == [f"j{i}" for i in range(12)]
    assert _count(graph) == 0
    (orphan,) = AuditJournal.adopt_orphans(root)
    assert [e.answer_id for e in orphan.read()] == received
    orphan.release()
    # the next process replays it at start, then journals its own answers
    writer = AuditWriter(AuditStore(graph), root)
    writer.start()
    writer.append(_entry("after"))
    assert writer.sync(30)
    present = AuditStore(graph).present([*received, "after"])
    assert present == {*received, "after"}
    assert AuditStore(graph).verify_chain().ok
    writer.close()
    assert list(root.iterdir()) == []


def test_a_torn_last_line_is_skipped_and_a_live_journal_is_left_alone(graph, tmp_path):
    root = tmp_path / "journal"
    received = _crash_after("bolt://127.0.0.1:1", root, 3)
    (segment,) = next(root.iterdir()).glob("*.jsonl")
    with segment.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps({"answer_id": "torn"})[:12])  # killed mid-write: never acknowledged
    live = AuditJournal(root)  # a running process's journal: locked, never replayed by others
    live.write([_entry("live")])
    assert replay_orphans(AuditStore(graph), root) == 3
    assert AuditStore(graph).present([*received, "live", "torn"]) == set(received)
    assert [p.name for p in root.iterdir()] == [live.dir.name]
    live.close()


_REPLICA = r"""
import sys
from neo4j import GraphDatabase
from kg.audit import AuditCitation, AuditEntry, AuditStore
from kg.audit_writer import AuditWriter
import threading

uri, root, name = sys.argv[1], sys.argv[2], sys.argv[3]
with GraphDatabase.driver(uri) as driver:
    writer = AuditWriter(AuditStore(driver), root, max_batch=16)
    writer.start()
    def client(t):
        for i in range(15):
            writer.append(AuditEntry(
                answer_id=f"{name}-{t}-{i}", question="问", answer="答[[AUD/第一条]]", status="VERIFIED",
                model_id="extractive", graph_version=1, at="2026-11-23T00:00:00Z", actor=name,
                citations=[AuditCitation("AUD/第一条", 1, "十四日内", 5, 9, 0.9, True)],
            ))
    threads = [threading.Thread(target=client, args=(t,)) for t in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert writer.close(60) == 0
"""


def test_two_replicas_appending_at_once_keep_one_valid_chain(graph, neo4j_server, tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _REPLICA, neo4j_server.bolt_uri, str(tmp_path / name), name],
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for name in ("r1", "r2")
    ]
    assert [p.wait(300) for p in procs] == [0, 0]
    report = AuditStore(graph).verify_chain()
    assert report.ok and report.checked == 120, report
    rows, _, _ = graph.execute_query("MATCH (a:Answer) RETURN a.actor AS actor, count(*) AS n ORDER BY actor")
    assert [(r["actor"], r["n"]) for r in rows] == [("r1", 60), ("r2", 60)]


def test_a_deadline_beyond_any_timeout_waits_like_none(graph, tmp_path):
    """gRPC reports a call without a deadline as one ~292 years away; the writer must take it."""
    import time

    writer = AuditWriter(AuditStore(graph), tmp_path / "journal")
    writer.start()
    assert writer.append(_entry("far"), deadline=time.monotonic() + 9.2e18).answer_id == "far"
    writer.close()


def test_kgqa_audit_verify_counts_journaled_answers_and_replay_appends_them(graph, neo4j_server, tmp_path):
    root = tmp_path / "journal"
    received = _crash_after("bolt://127.0.0.1:1", root, 4)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "KGQA_NEO4J_URI": neo4j_server.bolt_uri,
        "KGQA_HOME": str(tmp_path / "home"),
        "KGQA_AUDIT_JOURNAL_DIR": str(root),
    }

    def kgqa(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "kgqa", *args, "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    assert kgqa("audit", "verify")["journaled"] == 4
    assert kgqa("audit", "replay") == {"appended": 4}
    report = kgqa("audit", "verify")
    assert report["ok"] and report["checked"] == 4 and report["journaled"] == 0
    assert AuditStore(graph).present(received) == set(received)
