"""Read-side views of the clause graph: statistics and the provenance of one clause."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import neo4j

from ingest.types import ClauseItem
from kg import queries as q
from kg.session import GraphSession
from kgqa.errors import NotFound


@dataclass
class GraphStats:
    """Counts per label and relationship type, clause statuses and the graph version."""

    labels: dict[str, int]
    relationships: dict[str, int]
    clause_status: dict[str, int]
    graph_version: int


@dataclass(frozen=True)
class DocumentRef:
    """The document a clause version belongs to. ``version`` follows :data:`kg.queries.DOC_VERSION`:
    the document version that clause version was written in (what its citations report)."""

    doc_id: str
    title: str
    version: int
    kind: str | None = None
    source_path: str | None = None


@dataclass(frozen=True)
class ChangeRef:
    """A Change of the change log that is ON a clause version."""

    seq: int
    op: str
    at: str | None = None
    actor: str | None = None


@dataclass(frozen=True)
class ClauseVersionInfo:
    """One version of a clause, oldest first in :attr:`ClauseView.history`."""

    version: int
    status: str
    sha256: str | None = None
    created_at: str | None = None
    changes: list[ChangeRef] = field(default_factory=list)
    text: str = ""


@dataclass(frozen=True)
class TripleView:
    """A triple stated in the clause version shown (``qualifiers`` decoded)."""

    triple_id: str
    subject: str
    predicate: str
    object: str
    qualifiers: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.0
    origin: str = ""
    status: str = ""


@dataclass(frozen=True)
class ReferenceOut:
    """A resolved cross reference from the clause: ``kind`` is ``clause`` or ``document``."""

    target: str
    kind: str
    text: str | None = None


@dataclass(frozen=True)
class ReferenceIn:
    """An active clause that refers to this one."""

    source: str
    text: str | None = None


@dataclass
class ClauseView:
    """Everything an auditor needs about one clause version."""

    clause_id: str
    version: int
    status: str
    number: str
    ordinal: int
    text: str
    page_start: int
    page_end: int
    document: DocumentRef
    section_path: list[str]
    items: list[ClauseItem] = field(default_factory=list)
    history: list[ClauseVersionInfo] = field(default_factory=list)
    triples: list[TripleView] = field(default_factory=list)
    references_out: list[ReferenceOut] = field(default_factory=list)
    references_in: list[ReferenceIn] = field(default_factory=list)
    unresolved_references: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DocumentSummary:
    """One document as a list of documents shows it."""

    doc_id: str
    title: str
    kind: str
    version: int
    pages: int
    ingested_at: str
    clauses: int


@dataclass(frozen=True)
class ClauseEntry:
    """An active clause as an outline lists it: its id, number, version, first page and first words."""

    clause_id: str
    number: str
    version: int
    page_start: int
    preview: str


@dataclass
class OutlineSection:
    """A section of a document with its active clauses and its subsections, in document order."""

    section_id: str
    number: str
    title: str
    level: int
    clauses: list[ClauseEntry] = field(default_factory=list)
    children: list[OutlineSection] = field(default_factory=list)


@dataclass
class DocumentOutline:
    """A document's section tree: documents -> sections -> clauses."""

    document: DocumentSummary
    sections: list[OutlineSection]


def _document_summary(row: Any, clauses: int) -> DocumentSummary:
    return DocumentSummary(
        doc_id=row["doc_id"],
        title=row["title"] or row["doc_id"],
        kind=row["kind"] or "",
        version=row["version"] or 1,
        pages=row["pages"] or 0,
        ingested_at=str(row["ingested_at"] or ""),
        clauses=clauses,
    )


def _section_tree(rows: list[dict[str, Any]]) -> list[OutlineSection]:
    """Sections (in document order, parents named by ``parent_id``) as a tree; empty branches dropped."""
    nodes: dict[str, OutlineSection] = {}
    parents: dict[str, str | None] = {}
    for s in rows:
        nodes[s["section_id"]] = OutlineSection(
            section_id=s["section_id"],
            number=s.get("number") or "",
            title=s.get("title") or "",
            level=s.get("level") or 0,
            clauses=[
                ClauseEntry(
                    clause_id=c["clause_id"],
                    number=c.get("number") or "",
                    version=c.get("version") or 1,
                    page_start=c.get("page_start") or 0,
                    preview=c.get("preview") or "",
                )
                for c in s.get("clauses") or []
            ],
        )
        parents[s["section_id"]] = s.get("parent_id")
    roots: list[OutlineSection] = []
    for sid, node in nodes.items():
        parent = nodes.get(parents[sid] or "")
        (parent.children if parent is not None else roots).append(node)

    def keep(node: OutlineSection) -> bool:
        node.children = [c for c in node.children if keep(c)]
        return bool(node.clauses or node.children)

    return [r for r in roots if keep(r)]


def clause_items(items_json: str | None) -> list[ClauseItem]:
    """The enumerated items a clause stores as JSON (``items_json``), in order."""
    try:
        raw = json.loads(items_json or "[]")
    except json.JSONDecodeError:
        return []
    return [
        ClauseItem(
            marker=str(i.get("marker") or ""), text=str(i.get("text") or ""), level=int(i.get("level") or 1)
        )
        for i in raw
        if isinstance(i, dict)
    ]


class GraphReader:
    """Read queries over the clause graph.

    Args:
        driver: an open ``neo4j.Driver``.
        database: target database; ``None`` uses the server default.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._graph = GraphSession(driver, database)

    def _query(self, query: str, **params: Any) -> list[neo4j.Record]:
        return self._graph.read(query, **params)

    def graph_version(self) -> int:
        return self._query(q.GRAPH_VERSION)[0]["version"]

    def stats(self) -> GraphStats:
        return GraphStats(
            labels={r["label"]: r["n"] for r in self._query(q.COUNT_LABELS)},
            relationships={r["type"]: r["n"] for r in self._query(q.COUNT_RELATIONSHIPS)},
            clause_status={r["status"]: r["n"] for r in self._query(q.COUNT_CLAUSE_STATUS)},
            graph_version=self.graph_version(),
        )

    def clause(self, clause_id: str, version: int | None = None) -> ClauseView:
        """The clause (active version unless ``version`` is given) with its full provenance."""
        rows = self._query(q.CLAUSE_DETAIL, clause_id=clause_id, version=version)
        if not rows:
            which = f" version {version}" if version is not None else ""
            raise NotFound(
                f"clause {clause_id}{which} is not in the graph; list clauses with `kgqa kg stats`"
            )
        row = rows[0]
        c, doc = row["clause"], row["document"]
        history = [
            ClauseVersionInfo(
                version=r["version"],
                status=r["status"],
                sha256=r["sha256"],
                created_at=r["created_at"],
                changes=[ChangeRef(ch["seq"], ch["op"], ch["at"], ch["actor"]) for ch in r["changes"]],
                text=r["text"] or "",
            )
            for r in self._query(q.CLAUSE_HISTORY, clause_id=clause_id)
        ]
        triples = [
            TripleView(
                triple_id=t["triple_id"],
                subject=t["subject"] or "",
                predicate=t["predicate"] or "",
                object=t["object"] or "",
                qualifiers=json.loads(t["qualifiers_json"] or "{}"),
                confidence=float(t["confidence"] or 0.0),
                origin=t["origin"] or "",
                status=t["status"] or "",
            )
            for t in (
                r["triple"] for r in self._query(q.CLAUSE_TRIPLES, clause_id=clause_id, version=c["version"])
            )
        ]
        refs = self._query(q.CLAUSE_REFERENCES, clause_id=clause_id, version=c["version"])[0]
        outgoing = [ReferenceOut(o["target"], o["kind"], o["text"]) for o in refs["outgoing"]]
        resolved = {f"{o.kind}:{o.target}" for o in outgoing}
        resolved_texts = {o.text for o in outgoing}
        # A declared target may carry a title key after a space (kg.writer._ref_target); it is
        # resolved when its own id is, or when the key found documents for the same words.
        declared = zip(refs["declared"] or [], refs["declared_text"] or [], strict=False)
        unresolved = [
            t.split(" ")[0]
            for t, text in declared
            if t.split(" ")[0] not in resolved and not (" " in t and text in resolved_texts)
        ]
        return ClauseView(
            clause_id=c["clause_id"],
            version=c["version"],
            status=c["status"],
            number=c["number"],
            ordinal=c["ordinal"],
            text=c["text"],
            page_start=c["page_start"],
            page_end=c["page_end"],
            document=DocumentRef(
                doc_id=doc["doc_id"],
                title=doc["title"] or doc["doc_id"],
                version=int(row["doc_version"]),
                kind=doc["kind"],
                source_path=doc["source_path"],
            ),
            section_path=list(row["section_path"]),
            items=clause_items(c.get("items_json")),
            history=history,
            triples=triples,
            references_out=outgoing,
            references_in=[ReferenceIn(i["source"], i["text"]) for i in refs["incoming"]],
            unresolved_references=unresolved,
        )

    def documents(self) -> list[DocumentSummary]:
        """Every document, by title, with its count of active clauses."""
        return [_document_summary(r, r["clauses"]) for r in self._query(q.DOCUMENT_LIST)]

    def outline(self, doc_id: str, preview_chars: int = 40) -> DocumentOutline:
        """A document's sections and active clauses as a tree (sections without clauses left out)."""
        rows = self._query(q.DOCUMENT_OUTLINE, doc_id=doc_id, preview=preview_chars)
        if not rows:
            raise NotFound(f"document {doc_id} is not in the graph; list documents with `kgqa kg stats`")
        row = rows[0]
        sections = _section_tree([dict(s) for s in row["sections"]])
        count = sum(len(s["clauses"] or []) for s in row["sections"])
        return DocumentOutline(_document_summary(row, count), sections)

    def find_text(self, needle: str, limit: int = 20) -> list[dict[str, Any]]:
        """Every node or relationship property containing ``needle`` (audits for leaked data)."""
        hits = [dict(r) for r in self._query(q.TEXT_PROPERTIES_CONTAINING, needle=needle, limit=limit)]
        hits += [dict(r) for r in self._query(q.REL_PROPERTIES_CONTAINING, needle=needle, limit=limit)]
        return hits


__all__ = [
    "ChangeRef",
    "ClauseVersionInfo",
    "ClauseView",
    "DocumentRef",
    "GraphReader",
    "GraphStats",
    "ReferenceIn",
    "ReferenceOut",
    "TripleView",
    "clause_items",
]
