"""The verifier's evidence from the clause graph: cited clauses with their document and triples.

One ``UNWIND`` query fetches every clause an answer cites, so verifying an answer costs one round
trip whatever the number of citations. :meth:`GraphEvidence.fetch` returns the *latest* version
of each id (the active one; for a retired clause its last version), which lets the verifier say
"not active" rather than "unknown"; :meth:`GraphEvidence.fetch_versions` returns exact versions,
for re-checking the answers of an audit trace against the text they cited.

:class:`SnapshotEvidence` is what serving uses: the evidence of every active clause, read once
per graph version and kept in memory (refreshed in the background within seconds of the graph
moving, edits included), so that verifying an answer reads nothing from Neo4j when the cited
clause versions are the snapshot's; anything else (a version the snapshot lacks, an id that is
not active) is read from the graph as before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import neo4j
import structlog

from kg import queries as q
from kg.session import GraphSession
from kg.snapshot import graph_version as read_graph_version
from kg.tables import render_table
from kg.verification.types import EvidenceClause, EvidenceSource, TripleFact

log = structlog.get_logger(__name__)

__all__ = [
    "EvidenceClause",
    "EvidenceRead",
    "EvidenceSnapshot",
    "EvidenceSource",
    "GraphEvidence",
    "SnapshotEvidence",
    "TripleFact",
]


@dataclass(frozen=True)
class EvidenceRead:
    """The evidence of one answer and where it came from.

    Attributes:
        clauses: clause id -> the version the answer is verified against (absent: unknown id).
        graph_version: the graph version this evidence is of (the snapshot's, or the newest one
            the process has seen when some clauses were read from the graph); None when the
            source does not know it (the audit store then stamps the version it writes at).
        from_graph: how many clauses were read from Neo4j for this answer (0 in the common case).
    """

    clauses: dict[str, EvidenceClause]
    graph_version: int | None
    from_graph: int = 0


@dataclass(frozen=True)
class EvidenceSnapshot:
    """The evidence of every active clause, read at ``graph_version`` (read first, like
    :func:`kg.snapshot.read_snapshot`: a write during the read makes it look older, never newer)."""

    graph_version: int
    clauses: Mapping[str, EvidenceClause]


class GraphEvidence:
    """An :class:`EvidenceSource` backed by Neo4j.

    Args:
        driver: an open ``neo4j.Driver`` (built by the composition root).
        database: target database; ``None`` uses the server default.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._driver = driver
        self._database = database
        self._graph = GraphSession(driver, database)

    def fetch(self, clause_ids: Sequence[str]) -> dict[str, EvidenceClause]:
        """The latest version of each id; ids not in the graph are absent.

        Raises:
            GraphUnavailable: Neo4j cannot be reached.
        """
        ids = list(dict.fromkeys(clause_ids))
        if not ids:
            return {}
        records = self._graph.read(q.EVIDENCE_LATEST, clause_ids=ids)
        return {r["key"]: _evidence(r) for r in records}

    def fetch_latest(self, clause_ids: Sequence[str]) -> dict[str, EvidenceClause]:
        """:meth:`fetch` (always from Neo4j here; see ``SnapshotEvidence.fetch_latest``)."""
        return self.fetch(clause_ids)

    def fetch_versions(self, refs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], EvidenceClause]:
        """Exact clause versions ``(clause_id, version)``; versions not in the graph are absent.

        Raises:
            GraphUnavailable: Neo4j cannot be reached.
        """
        keys = list(dict.fromkeys((cid, int(v)) for cid, v in refs))
        if not keys:
            return {}
        rows = [{"clause_id": cid, "version": v} for cid, v in keys]
        records = self._graph.read(q.EVIDENCE_VERSIONS, refs=rows)
        return {(r["key"]["clause_id"], r["key"]["version"]): _evidence(r) for r in records}

    def read(self, clause_ids: Sequence[str], expected: Mapping[str, int] | None = None) -> EvidenceRead:
        """:meth:`fetch` as an :class:`EvidenceRead` (``expected`` is ignored: all from the graph)."""
        found = self.fetch(clause_ids)
        return EvidenceRead(found, None, len(found))

    def snapshot(self, version: int | None = None) -> EvidenceSnapshot:
        """The evidence of every active clause at the current graph version (one read).

        Args:
            version: the graph version the caller has just read (before this read, so a write
                in between makes the snapshot look older, never newer); None reads it here.

        Raises:
            GraphUnavailable: Neo4j cannot be reached.
        """
        if version is None:
            version = read_graph_version(self._driver, self._database)
        records = self._graph.read(q.EVIDENCE_ACTIVE)
        return EvidenceSnapshot(version, {r["key"]: _evidence(r) for r in records})

    def graph_version(self) -> int:
        return read_graph_version(self._driver, self._database)


class SnapshotEvidence:
    """An :class:`EvidenceSource` that answers from an in-memory :class:`EvidenceSnapshot`.

    The snapshot holds the active version of every clause with its triples and tables, which is
    what an answer built from retrieval's own snapshot cites. A background thread compares the
    graph version every ``refresh_s`` seconds and reads a new snapshot when it moved; requests
    keep using the old one meanwhile (it is replaced whole, never changed in place).

    Args:
        graph: the Neo4j evidence reader (snapshot reads and the fallback).
        refresh_s: seconds between graph-version checks; 0 = never refresh in the background.
    """

    def __init__(self, graph: GraphEvidence, *, refresh_s: float = 2.0) -> None:
        self._graph = graph
        self._refresh_s = refresh_s
        self._snapshot: EvidenceSnapshot | None = None
        self._seen = 0
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def snapshot(self) -> EvidenceSnapshot | None:
        """The snapshot in use (None until the first successful read)."""
        return self._snapshot

    def load(self, version: int | None = None) -> EvidenceSnapshot:
        """Read a new snapshot now and use it (``version``: see :meth:`GraphEvidence.snapshot`).

        Raises:
            GraphUnavailable: Neo4j cannot be reached (the old snapshot stays in use).
        """
        with self._load_lock:
            snapshot = self._graph.snapshot(version)
            self._snapshot = snapshot
            self._seen = max(self._seen, snapshot.graph_version)
        log.info(
            "evidence.snapshot_loaded", graph_version=snapshot.graph_version, clauses=len(snapshot.clauses)
        )
        return snapshot

    def refresh(self) -> bool:
        """Load a new snapshot when the graph version moved since the one in use.

        Returns:
            True when a new snapshot was loaded.
        """
        version = self._graph.graph_version()
        self._seen = max(self._seen, version)
        current = self._snapshot
        if current is not None and current.graph_version == version:
            return False
        self.load(version)  # the version just read: not a second read of it
        return True

    def start(self) -> None:
        """Load the first snapshot (quietly failing while Neo4j is down) and keep it current."""
        if self._thread is not None:
            return
        self._refresh_quietly()
        if self._refresh_s > 0:
            self._thread = threading.Thread(target=self._run, name="kgqa-evidence-refresh", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._refresh_s):
            self._refresh_quietly()

    @property
    def refreshing(self) -> bool:
        """Whether the background refresh is running (it ends with :meth:`stop` or a closed driver)."""
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except neo4j.exceptions.DriverError as exc:
            if type(exc) is neo4j.exceptions.DriverError:  # "Driver closed": its owner has shut down
                log.info("evidence.refresh_stopped", reason=str(exc))
                self._stop.set()  # no later check can succeed: stop instead of retrying forever
            else:  # ServiceUnavailable and kin: Neo4j is down for now; keep the old snapshot
                log.debug("evidence.refresh_failed", error=type(exc).__name__)
        except Exception as exc:  # Neo4j down or a bad read: keep serving the old snapshot
            log.debug("evidence.refresh_failed", error=type(exc).__name__)

    # -- reading ------------------------------------------------------------------------------
    def read(self, clause_ids: Sequence[str], expected: Mapping[str, int] | None = None) -> EvidenceRead:
        """The evidence of ``clause_ids``: from memory where the snapshot has them (at the version
        in ``expected``, when given: the version retrieval handed to the answer), else from Neo4j.

        Raises:
            GraphUnavailable: a clause had to be read from Neo4j and it cannot be reached.
        """
        ids = list(dict.fromkeys(clause_ids))
        snapshot = self._snapshot
        if snapshot is None:
            found = self._graph.fetch(ids) if ids else {}
            return EvidenceRead(found, None, len(ids))
        out: dict[str, EvidenceClause] = {}
        missing: list[str] = []
        for cid in ids:
            ev = snapshot.clauses.get(cid)
            if ev is None or (expected is not None and cid in expected and expected[cid] != ev.version):
                missing.append(cid)
            else:
                out[cid] = ev
        if not missing:
            return EvidenceRead(out, snapshot.graph_version, 0)
        out.update(self._graph.fetch(missing))
        return EvidenceRead(out, max(self._seen, snapshot.graph_version), len(missing))

    def fetch(self, clause_ids: Sequence[str]) -> dict[str, EvidenceClause]:
        """The :class:`EvidenceSource` protocol: the latest version of each id."""
        return self.read(clause_ids).clauses

    def fetch_latest(self, clause_ids: Sequence[str]) -> dict[str, EvidenceClause]:
        """The version of each id the graph holds now, read from Neo4j, never from the snapshot.

        For the auditor's "as the clause reads now": the snapshot may lag an edit by up to the
        refresh interval, and an audit page must not call a clause unchanged that was just edited.
        """
        return self._graph.fetch(clause_ids)

    def fetch_versions(self, refs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], EvidenceClause]:
        """Exact versions, from memory when the snapshot holds them, else from Neo4j."""
        snapshot = self._snapshot
        out: dict[tuple[str, int], EvidenceClause] = {}
        missing: list[tuple[str, int]] = []
        for cid, version in dict.fromkeys((cid, int(v)) for cid, v in refs):
            ev = snapshot.clauses.get(cid) if snapshot is not None else None
            if ev is not None and ev.version == version:
                out[(cid, version)] = ev
            else:
                missing.append((cid, version))
        if missing:
            out.update(self._graph.fetch_versions(missing))
        return out


def _evidence(record: neo4j.Record) -> EvidenceClause:
    c = record["clause"]
    triples = [
        TripleFact(
            subject=t["subject"] or "",
            predicate=t["predicate"] or "",
            object=t["object"] or "",
            qualifiers=json.loads(t["qualifiers_json"] or "{}"),
            subject_type=t["subject_type"],
            object_type=t["object_type"],
            asserted=bool(t.get("asserted")),
        )
        for t in record["triples"]
    ]
    return EvidenceClause(
        clause_id=c["clause_id"],
        version=c["version"],
        status=c["status"],
        doc_id=c["doc_id"],
        doc_title=record["doc_title"] or "",
        doc_version=int(record["doc_version"]),
        number=c["number"] or "",
        text=c["text"] or "",
        section_path=[p for p in record["section_path"] if p],
        page_start=c["page_start"] or 1,
        page_end=c["page_end"] or c["page_start"] or 1,
        triples=triples,
        tables=[
            render_table(
                t["caption"],
                json.loads(t["header_json"]) if t["header_json"] else None,
                json.loads(t["rows_json"] or "[]"),
            )
            for t in record["tables"]
        ],
    )
