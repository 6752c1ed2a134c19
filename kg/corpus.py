"""The active corpus in context, read at one graph version: what dataset generation builds from.

One read transaction (so clauses, tables, the change log and the graph version agree), documents
in batches: one query for the documents and their section tree, then per batch of documents one
for the active clauses (with triples, references and neighbours) and one for the tables. The
records become the typed values below; no caller sees a ``neo4j.Record``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import neo4j

from ingest.types import ClauseItem
from kg import queries as q
from kg.reader import clause_items
from kg.session import GraphSession
from kg.verification.types import TripleFact


@dataclass(frozen=True)
class SectionHeading:
    """A section of a document: its path from the document down ("number title", root first)."""

    section_id: str
    ord: int
    path: tuple[str, ...]


@dataclass(frozen=True)
class DocumentSections:
    """A document's title and its sections in document order."""

    doc_id: str
    title: str
    sections: tuple[SectionHeading, ...] = ()


@dataclass(frozen=True)
class ClauseContext:
    """An active clause version with its place and neighbourhood in the graph.

    ``refers_to`` holds the active clauses it references (REFERS_TO), ``neighbours`` the
    previous/next active clauses of the same section (NEXT), ``triples`` those of this version.
    """

    clause_id: str
    ordinal: int = 0
    text: str = ""
    page_start: int = 1
    page_end: int = 1
    version: int = 1
    doc_id: str = ""
    number: str = ""
    section_id: str = ""
    items: tuple[ClauseItem, ...] = ()
    triples: tuple[TripleFact, ...] = ()
    refers_to: tuple[str, ...] = ()
    neighbours: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableRecord:
    """A Table node with the section it sits in (``header`` None when the table has none)."""

    table_id: str
    doc_id: str
    section_id: str
    page: int
    caption: str | None
    header: tuple[str, ...] | None
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class CorpusRead:
    """Everything :func:`read_corpus` returns, at ``graph_version``.

    Attributes:
        changed_since: ids of the clauses the change log touched after the ``since`` version
            asked for (clause add/update/retire, and edits of a triple stated in the clause);
            None when no ``since`` was given.
    """

    graph_version: int
    documents: tuple[DocumentSections, ...]
    clauses: tuple[ClauseContext, ...]
    tables: tuple[TableRecord, ...]
    changed_since: frozenset[str] | None = None


def read_corpus(
    driver: neo4j.Driver, database: str | None = None, *, since: int | None = None, batch_docs: int = 25
) -> CorpusRead:
    """Read the active corpus in one read transaction.

    Args:
        driver: an open ``neo4j.Driver``.
        database: target database; ``None`` uses the server default.
        since: a graph version; when given, ``changed_since`` names the clauses changed after it.
        batch_docs: documents per clause/table query (bounded result sizes on large graphs).

    Raises:
        GraphUnavailable: Neo4j cannot be reached.
    """
    return GraphSession(driver, database).read_tx(_read, since, max(1, batch_docs))


def _read(tx: neo4j.ManagedTransaction, since: int | None, batch_docs: int) -> CorpusRead:
    version = tx.run(q.GRAPH_VERSION).single(strict=True)["version"]
    documents = tuple(_document(r) for r in tx.run(q.DATAGEN_DOCUMENTS))
    clauses: list[ClauseContext] = []
    tables: list[TableRecord] = []
    for batch in _batches([d.doc_id for d in documents], batch_docs):
        clauses.extend(_clause(r) for r in tx.run(q.DATAGEN_CLAUSES, doc_ids=batch))
        tables.extend(_table(r) for r in tx.run(q.DATAGEN_TABLES, doc_ids=batch))
    changed: frozenset[str] | None = None
    if since is not None:
        changed = frozenset(r["clause_id"] for r in tx.run(q.DATAGEN_CHANGED_SINCE, since=since))
    return CorpusRead(int(version), documents, tuple(clauses), tuple(tables), changed)


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _loads(raw: str | None, default: Any) -> Any:
    if not raw:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return default


def _document(r: neo4j.Record) -> DocumentSections:
    sections = tuple(
        SectionHeading(s["section_id"], int(s["ord"] or 0), tuple(p for p in s["path"] if p))
        for s in r["sections"]
        if s.get("section_id")
    )
    return DocumentSections(r["doc_id"], r["title"], sections)


def _triple(raw: dict[str, Any]) -> TripleFact:
    qualifiers = _loads(raw.get("qualifiers_json"), {})
    return TripleFact(
        subject=raw.get("subject") or "",
        predicate=raw.get("predicate") or "",
        object=raw.get("object") or "",
        qualifiers=qualifiers if isinstance(qualifiers, dict) else {},
    )


def _clause(r: neo4j.Record) -> ClauseContext:
    return ClauseContext(
        clause_id=r["clause_id"],
        ordinal=int(r["ordinal"] or 0),
        text=r["text"] or "",
        page_start=int(r["page_start"] or 1),
        page_end=int(r["page_end"] or r["page_start"] or 1),
        version=int(r["version"]),
        doc_id=r["doc_id"],
        number=r["number"] or "",
        section_id=r["section_id"] or "",
        items=tuple(clause_items(r["items_json"])),
        triples=tuple(_triple(t) for t in r["triples"]),
        refers_to=tuple(r["refers_to"]),
        neighbours=tuple(r["neighbours"]),
    )


def _table(r: neo4j.Record) -> TableRecord:
    header = _loads(r["header_json"], None)
    rows = _loads(r["rows_json"], [])
    return TableRecord(
        table_id=r["table_id"],
        doc_id=r["doc_id"],
        section_id=r["section_id"] or "",
        page=int(r["page"] or 1),
        caption=r["caption"] or None,
        header=tuple(str(h) for h in header) if isinstance(header, list) else None,
        rows=tuple(tuple(str(v) for v in row) for row in rows if isinstance(row, list)),
    )


__all__ = [
    "ClauseContext",
    "CorpusRead",
    "DocumentSections",
    "SectionHeading",
    "TableRecord",
    "read_corpus",
]
