"""The active clauses as one typed read: what retrieval serves from memory.

Retrieval answers from an in-process snapshot of the graph (serving/retrieval/index.py) so that an
Ask makes no Neo4j read in the common case. This module is the one place that reads it: clause
provenance, chunks, graph neighbours and the entity names the tokenizer learns as words, all at
one graph version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import neo4j

from kg import queries as q
from kg.session import GraphSession


@dataclass(frozen=True)
class ChunkText:
    """One chunk of a long clause (chunks are indexed separately; hits count for their clause)."""

    ord: int
    text: str


@dataclass(frozen=True)
class ClauseRecord:
    """An active clause version with its provenance, as an answer cites it."""

    clause_id: str
    version: int
    doc_id: str
    doc_title: str
    doc_version: int
    number: str
    text: str
    section_path: tuple[str, ...] = ()
    page_start: int = 0
    page_end: int = 0
    chunks: tuple[ChunkText, ...] = ()


@dataclass
class GraphSnapshot:
    """Everything retrieval needs, read at ``graph_version``.

    Attributes:
        graph_version: the last Change.seq when the read began (a concurrent write makes the
            snapshot look older than it is, never newer, so it is refreshed rather than trusted).
        documents: ``(doc_id, title)`` of every document.
        clauses: the active clauses, by document and ordinal.
        neighbours: clause id -> related active clause ids, best first (references, adjacent
            clauses of the same section, clauses sharing a rare entity).
        terms: the concepts the graph defines (本手册所称计量周期 -> 计量周期), at most
            ``max_term_chars`` long: the tokenizer's user words (see ``kg.queries.DEFINED_TERMS``).
    """

    graph_version: int
    documents: list[tuple[str, str]] = field(default_factory=list)
    clauses: list[ClauseRecord] = field(default_factory=list)
    neighbours: dict[str, list[str]] = field(default_factory=dict)
    terms: list[str] = field(default_factory=list)


def graph_version(driver: neo4j.Driver, database: str | None = None) -> int:
    """The graph version (last Change.seq; 0 for an empty graph)."""
    records = GraphSession(driver, database).read(q.GRAPH_VERSION)
    return int(records[0]["version"]) if records else 0


def read_snapshot(
    driver: neo4j.Driver,
    database: str | None = None,
    *,
    max_entity_clauses: int = 6,
    neighbours_per_clause: int = 3,
    max_term_chars: int = 8,
) -> GraphSnapshot:
    """Read the snapshot (four queries; about a second for the 42 standards' 1,300 clauses)."""
    graph = GraphSession(driver, database)
    version = graph_version(driver, database)  # first: a write during the read makes it look stale
    rows = graph.read(q.SNAPSHOT_CLAUSES)
    docs = graph.read(q.KNOWN_DOCUMENTS)
    links = graph.read(
        q.SNAPSHOT_NEIGHBOURS, max_entity_clauses=max_entity_clauses, per_clause=neighbours_per_clause
    )
    names = graph.read(q.DEFINED_TERMS, max_chars=max_term_chars)
    clauses = [
        ClauseRecord(
            clause_id=r["clause_id"],
            version=int(r["version"]),
            doc_id=r["doc_id"],
            doc_title=r["doc_title"],
            doc_version=int(r["doc_version"] or 1),
            number=r["number"] or "",
            text=r["text"] or "",
            section_path=tuple(r["section_path"] or ()),
            page_start=int(r["page_start"] or 0),
            page_end=int(r["page_end"] or 0),
            chunks=tuple(ChunkText(int(k["ord"]), k["text"] or "") for k in r["chunks"]),
        )
        for r in rows
    ]
    return GraphSnapshot(
        graph_version=version,
        documents=sorted((d["doc_id"], d["title"] or d["doc_id"]) for d in docs),
        clauses=clauses,
        neighbours={r["clause_id"]: list(r["targets"]) for r in links},
        terms=sorted({r["name"] for r in names if r["name"]}),
    )


__all__ = ["ChunkText", "ClauseRecord", "GraphSnapshot", "graph_version", "read_snapshot"]
