"""Write a DocumentTree and its extraction to Neo4j, versioning what changed.

One document is written in one managed transaction, so a failure half-way leaves the graph as it
was (nothing already stored is lost), and the driver retries transient errors for us.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import neo4j
import structlog

from ingest.ids import normalize_title
from ingest.types import Chunk, ClauseNode, DocumentTree
from kg import queries as q
from kg.changes import Author, Change, Op, append_changes
from kg.references import remember_document
from kg.session import GraphSession
from kg.types import EntityRecord, Extraction, ReferenceRecord, TripleRecord
from kgqa.errors import DocumentConflict

log = structlog.get_logger(__name__)

WriteStatus = Literal["created", "updated", "replaced", "unchanged"]
EditPolicy = Literal["keep", "source"]
"""What re-ingestion does with a clause a knowledge manager edited by hand when the source file's
text of it changed too: ``keep`` (default) keeps the edit active and stores the source's text as
a ``pending`` version; ``source`` lets the source's text replace the edit. Either way the clause
is reported as a conflict. A clause whose source text did not change keeps its edit silently."""


@dataclass
class EditConflict:
    """A clause edited by hand whose source text changed since (see :data:`EditPolicy`).

    ``pending_version`` is the version holding the source's text (``keep``), or the new active
    version that replaced the edit (``source``).
    """

    clause_id: str
    edited_version: int
    pending_version: int
    policy: EditPolicy


@dataclass
class WriteResult:
    """What one document write did; the CLI prints it per file."""

    doc_id: str
    status: WriteStatus
    clauses_added: int = 0
    clauses_updated: int = 0
    clauses_retired: int = 0
    clauses_unchanged: int = 0
    triples_written: int = 0
    references_resolved: int = 0
    graph_version: int = 0
    changed_clause_ids: list[str] = field(default_factory=list)
    conflicts: list[EditConflict] = field(default_factory=list)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ref_target(ref: ReferenceRecord) -> str:
    """How a reference is stored on its clause for :data:`kg.queries.RESOLVE_REFERENCES`.

    ``document:ID`` / ``clause:ID``; a reference to a document that was unknown at extraction
    time adds the normalized title (and, for a clause, its number) after spaces, which neither
    ids nor normalized titles contain: ``clause:CAS-22-金融工具确认和计量/第五条 企业会计准则第22号 第五条``.
    """
    target = f"{ref.target_kind}:{ref.target_id}"
    if not ref.title_key:
        return target
    if ref.target_kind == "clause":
        return f"{target} {ref.title_key} {ref.target_id.split('/', 1)[1]}"
    return f"{target} {ref.title_key}"


def refs_by_clause(extraction: Extraction) -> dict[str, tuple[list[str], list[str]]]:
    refs: dict[str, tuple[list[str], list[str]]] = {}
    for ref in extraction.references:
        targets, texts = refs.setdefault(ref.source_clause_id, ([], []))
        key = _ref_target(ref)
        if key not in targets:
            targets.append(key)
            texts.append(ref.text)
    return refs


def _clause_row(c: ClauseNode, version: int, refs: dict[str, tuple[list[str], list[str]]]) -> dict[str, Any]:
    targets, texts = refs.get(c.clause_id, ([], []))
    return {
        "clause_id": c.clause_id,
        "version": version,
        "number": c.number,
        "ordinal": c.ordinal,
        "text": c.text,
        "page_start": c.page_start,
        "page_end": c.page_end,
        "sha256": c.sha256,
        "section_id": c.section_id,
        "items_json": json.dumps([asdict(i) for i in c.items], ensure_ascii=False),
        "refs_target": targets,
        "refs_text": texts,
    }


def chunk_rows(chunks: Iterable[Chunk]) -> list[dict[str, Any]]:
    """The ``$chunks`` rows of :data:`kg.queries.CREATE_CHUNKS` (ingestion and editing share them)."""
    return [{"chunk_id": k.chunk_id, "clause_id": k.clause_id, "ord": k.ord, "text": k.text} for k in chunks]


def entity_rows(entities: Iterable[EntityRecord]) -> list[dict[str, Any]]:
    """The ``$entities`` rows of :data:`kg.queries.MERGE_ENTITIES`."""
    return [
        {"entity_id": e.entity_id, "name": e.name, "type": e.type, "aliases": e.aliases} for e in entities
    ]


def triple_rows(triples: Iterable[TripleRecord]) -> list[dict[str, Any]]:
    """The ``$triples`` rows of :data:`kg.queries.CREATE_TRIPLES`."""
    return [
        {
            "triple_id": t.triple_id,
            "clause_id": t.clause_id,
            "subject": t.subject,
            "predicate": t.predicate,
            "object": t.object,
            "qualifiers_json": json.dumps(t.qualifiers, ensure_ascii=False),
            "confidence": float(t.confidence),
            "origin": t.origin,
            "subject_entity": t.subject_entity,
            "object_entity": t.object_entity,
        }
        for t in triples
    ]


class GraphWriter:
    """Writes documents into the clause graph.

    Args:
        driver: an open ``neo4j.Driver`` (built by the composition root).
        database: target database; ``None`` uses the server default.
        batch_size: rows per ``UNWIND`` statement; keeps transaction state bounded for huge files.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None, batch_size: int = 500) -> None:
        self._graph = GraphSession(driver, database)
        self._batch = batch_size

    def ensure_schema(self) -> None:
        """Create constraints and indexes; safe to run any number of times."""
        for stmt in q.SCHEMA:
            self._graph.write(stmt)
        self._graph.write(q.AWAIT_INDEXES)

    def graph_version(self) -> int:
        return self._graph.read(q.GRAPH_VERSION)[0]["version"]

    def known_documents(self) -> dict[str, list[str]]:
        """Ids and normalized titles of every stored document, for resolving 《...》 references."""
        known: dict[str, list[str]] = {}
        for r in self._graph.read(q.KNOWN_DOCUMENTS):
            remember_document(known, r["doc_id"], r["title"])
        return known

    def write_document(
        self,
        tree: DocumentTree,
        extraction: Extraction,
        *,
        actor: str = "kgqa-ingest",
        role: str = "admin",
        reason: str = "ingest",
        replace: bool = False,
        on_edit_conflict: EditPolicy = "keep",
    ) -> WriteResult:
        """Write one document; unchanged files write nothing, changed ones version only what changed.

        A document id belongs to the file it was first ingested from. A *different* file (another
        source path and other content) that yields the same id is refused, because writing it
        would retire the stored document's clauses: two standards sharing a number, or two
        manuals sharing a title, must not silently overwrite each other.

        Args:
            tree: the document.
            extraction: its triples, entities and references.
            actor: who is writing, recorded on every Change.
            role: the actor's role, recorded on every Change.
            reason: why, recorded on every Change.
            replace: allow ``tree`` to replace a document ingested from another file (``kgqa
                ingest --replace DOC_ID``): its clauses are versioned as for a changed file and a
                ``document.replace`` Change records the old and the new source.
            on_edit_conflict: what to do where the source's text of a clause changed after a
                knowledge manager edited it (:data:`EditPolicy`); reported in ``conflicts``.

        Raises:
            DocumentConflict: the id belongs to a document from another file and ``replace`` is
                False; nothing is written.
        """
        author = Author(actor, role, reason)
        result = self._graph.write_tx(self._write_tx, tree, extraction, author, replace, on_edit_conflict)
        if result.status != "unchanged":
            records = self._graph.write(
                q.RESOLVE_REFERENCES, doc_ids=[tree.doc_id], title_keys=[normalize_title(tree.title)]
            )
            result.references_resolved = records[0]["resolved"]
        log.info(
            "kg.write",
            doc_id=result.doc_id,
            status=result.status,
            added=result.clauses_added,
            updated=result.clauses_updated,
            retired=result.clauses_retired,
            triples=result.triples_written,
            graph_version=result.graph_version,
        )
        return result

    # -- the transaction ----------------------------------------------------------------------
    def _run_batched(
        self, tx: neo4j.ManagedTransaction, query: str, key: str, rows: list, **params: Any
    ) -> None:
        for start in range(0, len(rows), self._batch):
            tx.run(query, {key: rows[start : start + self._batch], **params}).consume()

    def _write_tx(
        self,
        tx: neo4j.ManagedTransaction,
        tree: DocumentTree,
        extraction: Extraction,
        author: Author,
        replace: bool,
        on_edit_conflict: EditPolicy,
    ) -> WriteResult:
        state = tx.run(q.DOCUMENT_STATE, doc_id=tree.doc_id).single()
        source = str(tree.source_path)
        replaced = state["sha256"] not in (None, tree.sha256) and state["source_path"] != source
        if replaced and not replace:
            raise DocumentConflict(tree.source_path, tree.doc_id, state["source_path"] or "another file")
        if state["sha256"] == tree.sha256:
            version = tx.run(q.GRAPH_VERSION).single()["version"]
            existing = [c for c in state["clauses"] if c["clause_id"] is not None]
            return WriteResult(
                tree.doc_id, "unchanged", clauses_unchanged=len(existing), graph_version=version
            )

        existing = {c["clause_id"]: c for c in state["clauses"] if c["clause_id"] is not None}
        new_ids = {c.clause_id for c in tree.clauses}
        # Clauses back in the source after a retirement: one an editor retired is a conflict
        # (kept retired under "keep"); one that vanished from an earlier file comes back.
        gone: dict[str, dict] = {}
        for r in state["retired"]:
            if r["clause_id"] not in gone or r["version"] > gone[r["clause_id"]]["version"]:
                gone[r["clause_id"]] = dict(r)
        returning = [c for c in tree.clauses if c.clause_id not in existing and c.clause_id in gone]
        retired_by_hand = [c for c in returning if gone[c.clause_id]["by_editor"]]
        if on_edit_conflict == "keep":
            returning = [c for c in returning if not gone[c.clause_id]["by_editor"]]
        added = [c for c in tree.clauses if c.clause_id not in existing and c.clause_id not in gone]
        updated = [
            c for c in tree.clauses if c.clause_id in existing and existing[c.clause_id]["sha256"] != c.sha256
        ]
        # Clauses edited by hand: an unchanged source text keeps the edit; a changed one conflicts.
        edited = {c.clause_id: c for c in updated if existing[c.clause_id].get("origin") == "editor"}
        conflicting = [
            c for c in edited.values() if (existing[c.clause_id].get("source_sha256") or "") != c.sha256
        ]
        keep = set(edited) if on_edit_conflict == "keep" else set(edited) - {c.clause_id for c in conflicting}
        updated = [c for c in updated if c.clause_id not in keep]
        same = [
            c for c in tree.clauses if c.clause_id in existing and existing[c.clause_id]["sha256"] == c.sha256
        ]
        retired = sorted(cid for cid in existing if cid not in new_ids)
        at = _now()
        refs = refs_by_clause(extraction)

        tx.run(
            q.MERGE_DOCUMENT,
            doc={
                "doc_id": tree.doc_id,
                "title": tree.title,
                "kind": tree.kind,
                "source_path": str(tree.source_path),
                "sha256": tree.sha256,
                "pages": tree.pages,
                "ocr_pages": tree.ocr_pages,
                "ingested_at": at,
                "redactions_json": json.dumps(tree.redactions, ensure_ascii=False),
                "title_key": normalize_title(tree.title),
            },
        ).consume()
        doc_version = (state["version"] or 0) + 1
        sections = [
            {
                "section_id": s.section_id,
                "number": s.number,
                "title": s.title,
                "level": s.level,
                "ord": s.ord,
                "parent_id": s.parent_id,
            }
            for s in tree.sections
        ]
        self._run_batched(tx, q.MERGE_SECTIONS, "sections", sections, doc_id=tree.doc_id)
        tx.run(q.DROP_SECTION_EDGES, doc_id=tree.doc_id).consume()
        self._run_batched(tx, q.LINK_SECTIONS, "sections", sections, doc_id=tree.doc_id)

        def next_version(cid: str) -> int:
            known = existing.get(cid) or gone[cid]
            return int(known.get("top") or known["version"]) + 1

        new_rows = (
            [_clause_row(c, 1, refs) for c in added]
            + [_clause_row(c, next_version(c.clause_id), refs) for c in updated]
            + [_clause_row(c, next_version(c.clause_id), refs) for c in returning]
        )
        self._run_batched(
            tx, q.CREATE_CLAUSES, "clauses", new_rows, doc_id=tree.doc_id, at=at, doc_version=doc_version
        )
        self._run_batched(tx, q.UPDATE_CLAUSE_POSITIONS, "clauses", [_clause_row(c, 0, refs) for c in same])
        conflicts = [
            EditConflict(
                c.clause_id, existing[c.clause_id]["version"], next_version(c.clause_id), on_edit_conflict
            )
            for c in conflicting
        ] + [
            EditConflict(
                c.clause_id, gone[c.clause_id]["version"], next_version(c.clause_id), on_edit_conflict
            )
            for c in retired_by_hand
        ]
        pending = [
            {**_clause_row(c, next_version(c.clause_id), refs), "current": existing[c.clause_id]["version"]}
            for c in conflicting
            if c.clause_id in keep
        ]
        if on_edit_conflict == "keep":
            pending += [
                {**_clause_row(c, next_version(c.clause_id), refs), "current": gone[c.clause_id]["version"]}
                for c in retired_by_hand
            ]
        self._run_batched(
            tx,
            q.CREATE_PENDING_CLAUSES,
            "clauses",
            pending,
            doc_id=tree.doc_id,
            at=at,
            doc_version=doc_version,
        )
        if retired:
            tx.run(q.RETIRE_CLAUSES, clause_ids=retired, at=at).consume()
            tx.run(q.SUPERSEDE_TRIPLES, clause_ids=retired, status="retired").consume()
            tx.run(q.REPLACE_CHUNKS, clause_ids=retired).consume()
        tx.run(q.RELINK_NEXT, doc_id=tree.doc_id, order=[c.clause_id for c in tree.clauses]).consume()
        tx.run(
            q.DELETE_STALE_SECTIONS, doc_id=tree.doc_id, keep=[s.section_id for s in tree.sections]
        ).consume()

        touched = [c.clause_id for c in added + updated + returning]
        touched_set = set(touched)
        tx.run(q.SUPERSEDE_TRIPLES, clause_ids=[c.clause_id for c in updated], status="superseded").consume()
        tx.run(q.REPLACE_CHUNKS, clause_ids=touched).consume()
        chunks = chunk_rows(k for c in added + updated + returning for k in c.chunks)
        self._run_batched(tx, q.CREATE_CHUNKS, "chunks", chunks, doc_id=tree.doc_id)

        tx.run(q.DELETE_DOC_TABLES, doc_id=tree.doc_id).consume()
        tables = [
            {
                "table_id": t.table_id,
                "section_id": t.section_id,
                "page": t.page,
                "caption": t.caption,
                "rows_json": json.dumps(t.rows, ensure_ascii=False),
                "header_json": json.dumps(t.header, ensure_ascii=False) if t.header is not None else None,
                "n_rows": len(t.rows),
            }
            for t in tree.tables
        ]
        self._run_batched(tx, q.CREATE_TABLES, "tables", tables, doc_id=tree.doc_id)

        self._run_batched(tx, q.MERGE_ENTITIES, "entities", entity_rows(extraction.entities))
        triples = triple_rows(t for t in extraction.triples if t.clause_id in touched_set)
        self._run_batched(tx, q.CREATE_TRIPLES, "triples", triples)
        mentions = [
            {"clause_id": cid, "entity_id": eid}
            for cid, eid in sorted(set(extraction.mentions))
            if cid in touched_set
        ]
        self._run_batched(tx, q.CREATE_MENTIONS, "mentions", mentions)

        changes = _clause_changes(added, updated, retired, existing)
        changes += [
            Change(
                Op.CLAUSE_ADD,
                c.clause_id,
                next_version(c.clause_id),
                before={"version": gone[c.clause_id]["version"], "status": "retired"},
                after={"version": next_version(c.clause_id), "sha256": c.sha256},
            )
            for c in returning
        ]
        changes += [
            Change(
                Op.CLAUSE_PENDING,
                row["clause_id"],
                row["version"],
                before={
                    "version": row["current"],
                    "status": "retired" if row["clause_id"] in gone else "active",
                },
                after={"version": row["version"], "status": "pending", "sha256": row["sha256"]},
            )
            for row in pending
        ]
        if replaced:
            changes.append(
                Change(
                    Op.DOCUMENT_REPLACE,
                    tree.doc_id,
                    before={
                        "source_path": state["source_path"],
                        "sha256": state["sha256"],
                        "version": state["version"],
                    },
                    after={"source_path": source, "sha256": tree.sha256, "version": doc_version},
                )
            )
        version = append_changes(tx, changes, author, at=at, batch_size=self._batch)
        status: WriteStatus = (
            "created" if state["sha256"] is None else ("replaced" if replaced else "updated")
        )
        return WriteResult(
            doc_id=tree.doc_id,
            status=status,
            clauses_added=len(added) + len(returning),
            clauses_updated=len(updated),
            clauses_retired=len(retired),
            clauses_unchanged=len(same),
            triples_written=len(triples),
            graph_version=version,
            changed_clause_ids=touched + retired,
            conflicts=conflicts,
        )


def _clause_changes(
    added: list[ClauseNode], updated: list[ClauseNode], retired: list[str], existing: dict[str, dict]
) -> list[Change]:
    """The change log entries of one document write: clauses added, updated (a new version) and retired."""
    changes = [Change(Op.CLAUSE_ADD, c.clause_id, 1, after={"version": 1, "sha256": c.sha256}) for c in added]
    for c in updated:
        old = existing[c.clause_id]
        new = int(old.get("top") or old["version"]) + 1  # above a pending version, if any
        changes.append(
            Change(
                Op.CLAUSE_UPDATE,
                c.clause_id,
                new,
                before={"version": old["version"], "sha256": old["sha256"]},
                after={"version": new, "sha256": c.sha256},
            )
        )
    for cid in retired:
        old = existing[cid]
        changes.append(
            Change(
                Op.CLAUSE_RETIRE,
                cid,
                old["version"],
                before={"version": old["version"], "sha256": old["sha256"]},
            )
        )
    return changes
