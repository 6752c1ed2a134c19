"""A knowledge manager's edits of the graph: versioned, audited, checked and reversible.

Every edit is one write transaction that (1) reads the target's current state, (2) refuses the
edit when that state is not the version the editor saw (:class:`kgqa.errors.StaleEdit`), (3)
changes the graph and (4) appends its Change (:func:`kg.changes.append_changes`) with the
editor's key id, role, reason and the state before and after. Commit or abort, both together.

What "the version the editor saw" is: a clause's ``version``; a triple's or an entity's ``rev``
(1 until first edited, +1 per edit).

- A clause's new text is a new Clause version (the old one stays, superseded, behind
  ``(new)-[:SUPERSEDES]->(old)`` as ingestion does); its triples are re-extracted from the new
  text by the same rule extractor ingestion uses, and its chunks rebuilt. Triples an editor had
  set on the old version are carried over where the new text still states their values (asserted
  ones stay asserted); the others are dropped and named in the result.
- Retire / restore flip a clause version's status; its triples follow.
- A triple an editor adds or corrects is checked against its clause's text
  (:mod:`kg.edit_checks`); a value the text does not state is refused unless ``force``, and then
  stored with ``asserted = true``, which the verifier reports when it relies on it.
- Entities: rename keeps the old name as an alias; merge moves the mentions and triple links of
  one entity onto another, which takes its name and aliases as aliases (the merged entity stays,
  ``status = 'merged'``, so the merge can be reverted).
- :meth:`GraphEditor.revert` undoes one Change as a new Change (``*.revert``), against the state
  that Change left (else StaleEdit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import neo4j
import structlog

from ingest.chunking import chunk_text
from ingest.config import ChunkConfig
from ingest.structure import text_hash
from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg import queries as q
from kg.changes import Author, Change, Op, append_changes
from kg.edit_checks import unstated_values
from kg.references import remember_document
from kg.session import GraphSession
from kg.triples import RuleTripleExtractor, entity_id, triple_id
from kg.types import Extraction
from kg.writer import chunk_rows, entity_rows, refs_by_clause, triple_rows
from kgqa.errors import InvalidArgument, NotFound, StaleEdit, UnsupportedValue

log = structlog.get_logger(__name__)

_TRIPLE_EDITABLE = ("subject", "predicate", "object", "qualifiers_json", "status", "confidence", "confirmed",
                    "asserted", "assert_reason", "origin")  # fmt: skip
_ENTITY_EDITABLE = ("name", "aliases", "status", "merged_into")


@dataclass(frozen=True)
class Editor:
    """Who edits: the caller's key id (never the key) and role, recorded on every Change."""

    actor: str
    role: str

    def author(self, reason: str) -> Author:
        if not reason or not reason.strip():
            raise InvalidArgument("an edit needs a reason; say why the graph is changed")
        return Author(self.actor, self.role, reason.strip())


@dataclass(frozen=True)
class TripleValues:
    """The content of a triple as an editor writes it (see :class:`kg.types.TripleRecord`)."""

    subject: str
    predicate: str
    object: str
    qualifiers: dict[str, Any] = field(default_factory=dict)

    def validated(self) -> TripleValues:
        values = TripleValues(
            self.subject.strip(), self.predicate.strip(), self.object.strip(), self.qualifiers
        )
        if not (values.subject and values.predicate and values.object):
            raise InvalidArgument("a triple needs a subject, a predicate and an object")
        return values


@dataclass(frozen=True)
class EditResult:
    """What an edit did.

    Attributes:
        seq: the Change's seq (the graph version after the edit).
        op: the Change's operation (``clause.edit``, ``triple.correct``...).
        target_id: the clause, triple or entity id.
        version: the target's version after the edit (clause version; triple or entity ``rev``).
        asserted: a triple stored as an editor's assertion (its values are not in the clause text).
        triples: for a clause text edit, how many triples were extracted from the new text.
        dropped_triples: for a clause text edit, the editor-set triples of the old version that
            were not carried to the new one: their values are not in the new text (re-add them
            with ``force`` if they still hold). The others are carried (asserted ones stay so).
    """

    seq: int
    op: str
    target_id: str
    version: int
    asserted: bool = False
    triples: int = 0
    dropped_triples: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeRecord:
    """One Change of the log, as ``kgqa kg history`` lists it."""

    seq: int
    op: str
    target_id: str
    actor: str
    role: str
    at: str
    reason: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _load(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


def _change_record(row: Mapping[str, Any]) -> ChangeRecord:
    return ChangeRecord(
        seq=row["seq"],
        op=row["op"],
        target_id=row["target_id"],
        actor=row["actor"] or "",
        role=row["role"] or "",
        at=row["at"] or "",
        reason=row["reason"] or "",
        before=_load(row["before_json"]),
        after=_load(row["after_json"]),
    )


def _check_version(target_id: str, expected: int, current: int) -> None:
    if expected != current:
        raise StaleEdit(target_id, expected, current)


def _triple_snapshot(t: Mapping[str, Any]) -> dict[str, Any]:
    snap = {k: t.get(k) for k in _TRIPLE_EDITABLE}
    snap["rev"] = t["rev"]
    return snap


def _entity_snapshot(e: Mapping[str, Any]) -> dict[str, Any]:
    snap = {k: e.get(k) for k in _ENTITY_EDITABLE}
    snap["rev"] = e["rev"]
    return snap


class GraphEditor:
    """The edit operations of the graph, each one transaction with its Change.

    Args:
        driver: an open ``neo4j.Driver`` (owned by the composition root).
        database: target database; ``None`` uses the server default.
        extractor: the rule extractor that re-extracts the triples of an edited clause (built
            once: its spaCy pipeline is slow to create); ``None`` builds one on first use.
        chunk: how long clauses are cut for retrieval (``KGQA_INGEST__CHUNK__*``).
        redact: personal data never reaches the graph: an edit's texts pass through this
            (``ingest.redact.Redactor.redact``) first; ``None`` stores them as given.
    """

    def __init__(
        self,
        driver: neo4j.Driver,
        database: str | None = None,
        *,
        extractor: RuleTripleExtractor | None = None,
        chunk: ChunkConfig | None = None,
        redact: Any = None,
    ) -> None:
        self._graph = GraphSession(driver, database)
        self._extractor = extractor
        self._chunk = chunk or ChunkConfig()
        self._redact = redact

    # -- reads ----------------------------------------------------------------------------------
    def graph_version(self) -> int:
        return int(self._graph.read(q.GRAPH_VERSION)[0]["version"])

    def history(self, target_id: str) -> list[ChangeRecord]:
        """Every Change of a clause, triple, entity or document id, oldest first.

        Raises:
            NotFound: no Change names this id.
        """
        rows = self._graph.read(q.EDIT_HISTORY, target_id=target_id)
        if not rows:
            raise NotFound(f"no change recorded for {target_id!r}; check the id (kgqa kg clause ID)")
        return [_change_record(r["change"]) for r in rows]

    def change(self, seq: int) -> ChangeRecord:
        rows = self._graph.read(q.EDIT_CHANGE, seq=seq)
        if not rows:
            raise NotFound(f"no change with seq {seq}; see `kgqa kg history ID`")
        return _change_record(rows[0]["change"])

    def clauses_of(self, target_id: str) -> list[str]:
        """The clause ids an edit of ``target_id`` touches (a clause, a triple's clause, the
        active clauses mentioning an entity); empty for an unknown id."""
        rows = self._graph.read(q.EDIT_TARGET_CLAUSES, target_id=target_id)
        return sorted(set(rows[0]["clause_ids"])) if rows else []

    def last_change(self, target_ids: list[str]) -> int | None:
        """The seq of the newest Change of any of ``target_ids`` or of a triple stated in one of
        them (None: never changed)."""
        rows = self._graph.read(q.EDIT_LAST_CHANGE, target_ids=target_ids)
        seq = rows[0]["seq"] if rows else None
        return None if seq is None else int(seq)

    def active_versions(self, clause_ids: list[str]) -> dict[str, int]:
        """Clause id -> its active version (ids without an active version are left out); one read,
        however many clauses an entity's impact names."""
        rows = self._graph.read(q.EDIT_ACTIVE_VERSIONS, clause_ids=list(clause_ids))
        return {r["clause_id"]: int(r["version"]) for r in rows}

    def current_version(self, target_id: str) -> tuple[str, int]:
        """``(kind, version)`` of a clause, triple or entity id: what an editor passes back."""
        rows = self._graph.read(q.EDIT_CLAUSE_STATE, clause_id=target_id)
        if rows:
            return "clause", int(rows[0]["clause"]["version"])
        rows = self._graph.read(q.EDIT_TRIPLE_STATE, triple_id=target_id)
        if rows:
            return "triple", int(rows[0]["triple"]["rev"])
        rows = self._graph.read(q.EDIT_ENTITY_STATE, entity_id=target_id)
        if rows:
            return "entity", int(rows[0]["entity"]["rev"])
        raise NotFound(f"no clause, triple or entity {target_id!r}")

    # -- clauses --------------------------------------------------------------------------------
    def edit_clause_text(
        self, clause_id: str, text: str, *, expected_version: int, editor: Editor, reason: str
    ) -> EditResult:
        """Give an active clause new text: a new version, its triples re-extracted.

        Raises:
            NotFound: no such clause.
            InvalidArgument: empty text, the same text, or the clause is retired (restore it first).
            StaleEdit: the clause's active version is not ``expected_version``.
        """
        author = editor.author(reason)
        text = self._clean(text)
        if not text:
            raise InvalidArgument("the new clause text is empty; retire the clause instead")
        state = self._clause_state(clause_id)
        extraction, node = self._extract(state, text)
        return self._graph.write_tx(
            self._new_version_tx, clause_id, node, extraction, expected_version, author, Op.CLAUSE_EDIT, None
        )

    def retire_clause(
        self, clause_id: str, *, expected_version: int, editor: Editor, reason: str
    ) -> EditResult:
        """Retire an active clause (its triples follow); answers citing it stop verifying."""
        return self._graph.write_tx(
            self._status_tx,
            clause_id,
            "retired",
            expected_version,
            editor.author(reason),
            Op.CLAUSE_RETIRE,
            None,
        )

    def restore_clause(
        self, clause_id: str, *, expected_version: int, editor: Editor, reason: str
    ) -> EditResult:
        """Make the last version of a retired clause active again (its triples follow)."""
        return self._graph.write_tx(
            self._status_tx,
            clause_id,
            "active",
            expected_version,
            editor.author(reason),
            Op.CLAUSE_RESTORE,
            None,
        )

    # -- triples --------------------------------------------------------------------------------
    def add_triple(
        self,
        clause_id: str,
        values: TripleValues,
        *,
        expected_version: int,
        editor: Editor,
        reason: str,
        force: bool = False,
    ) -> EditResult:
        """State a new triple in the active version of a clause (``expected_version``: the clause's).

        Raises:
            UnsupportedValue: a value is not in the clause text and ``force`` is False.
            InvalidArgument: the triple already exists on this clause version.
            StaleEdit: the clause's active version is not ``expected_version``.
        """
        author = editor.author(reason)
        values = self._clean_values(values.validated())
        return self._graph.write_tx(self._add_triple_tx, clause_id, values, expected_version, author, force)

    def correct_triple(
        self,
        triple_id_: str,
        values: TripleValues,
        *,
        expected_version: int,
        editor: Editor,
        reason: str,
        force: bool = False,
    ) -> EditResult:
        """Correct a triple's subject, predicate, object (its id stays)."""
        author = editor.author(reason)
        values = self._clean_values(values.validated())

        def change(t: Mapping[str, Any], clause_text: str) -> dict[str, Any]:
            missing = unstated_values(values.subject, values.object, values.qualifiers, clause_text)
            if missing and not force:
                raise UnsupportedValue(f"triple {triple_id_}", missing)
            return {
                "subject": values.subject,
                "predicate": values.predicate,
                "object": values.object,
                "qualifiers_json": json.dumps(values.qualifiers, ensure_ascii=False),
                "origin": "editor",
                "confidence": 1.0,
                "confirmed": True,
                "asserted": bool(missing),
                "assert_reason": author.reason if missing else None,
            }

        return self._graph.write_tx(
            self._set_triple_tx, triple_id_, expected_version, author, Op.TRIPLE_CORRECT, change
        )

    def confirm_triple(
        self, triple_id_: str, *, expected_version: int, editor: Editor, reason: str
    ) -> EditResult:
        """Mark an extracted triple as checked by a person (confidence 1)."""
        return self._graph.write_tx(
            self._set_triple_tx,
            triple_id_,
            expected_version,
            editor.author(reason),
            Op.TRIPLE_CONFIRM,
            lambda t, _: {"confirmed": True, "confidence": 1.0, "status": "active"},
        )

    def reject_triple(
        self, triple_id_: str, *, expected_version: int, editor: Editor, reason: str
    ) -> EditResult:
        """Reject a wrong triple: it stays for the record but no longer counts as evidence."""
        return self._graph.write_tx(
            self._set_triple_tx,
            triple_id_,
            expected_version,
            editor.author(reason),
            Op.TRIPLE_REJECT,
            lambda t, _: {"status": "rejected"},
        )

    # -- entities -------------------------------------------------------------------------------
    def rename_entity(
        self, entity_id_: str, name: str, *, expected_version: int, editor: Editor, reason: str
    ) -> EditResult:
        """Give an entity a new name; the old name becomes an alias (its id stays)."""
        author = editor.author(reason)
        name = self._clean(name)
        if not name:
            raise InvalidArgument("the new entity name is empty")

        def change(e: Mapping[str, Any]) -> dict[str, Any]:
            aliases = [a for a in [*(e.get("aliases") or []), e["name"]] if a and a != name]
            return {"name": name, "aliases": list(dict.fromkeys(aliases))}

        return self._graph.write_tx(
            self._set_entity_tx, entity_id_, expected_version, author, Op.ENTITY_RENAME, change
        )

    def merge_entities(
        self,
        source_id: str,
        target_id: str,
        *,
        expected_version: int,
        expected_source_version: int,
        editor: Editor,
        reason: str,
    ) -> EditResult:
        """Merge entity ``source_id`` into ``target_id``: its mentions and triple links move over,
        its name and aliases become the target's aliases; the source stays as ``merged``.

        ``expected_version`` is the target's ``rev``, ``expected_source_version`` the source's.
        """
        author = editor.author(reason)
        if source_id == target_id:
            raise InvalidArgument("an entity cannot be merged into itself")
        return self._graph.write_tx(
            self._merge_tx, source_id, target_id, expected_version, expected_source_version, author
        )

    # -- revert ---------------------------------------------------------------------------------
    def revert(self, seq: int, *, editor: Editor, reason: str) -> EditResult:
        """Undo the Change ``seq`` as a new Change, if its target is still as that Change left it.

        Raises:
            NotFound: no Change with this seq.
            StaleEdit: the target changed after that Change; revert the later Change first.
            InvalidArgument: the Change cannot be reverted (a document replacement, a revert of
                a merge).
        """
        change = self.change(seq)
        author = editor.author(reason)
        kind = change.op.split(".", 1)[0]
        before, after = change.before or {}, change.after or {}
        marker = {"reverts": seq}
        if kind == "clause":
            return self._revert_clause(change, before, after, author, marker)
        if kind == "triple":
            current = after.get("rev") or 1
            if change.op == Op.TRIPLE_ADD.value:
                return self._graph.write_tx(
                    self._set_triple_tx,
                    change.target_id,
                    current,
                    author,
                    Op.TRIPLE_REVERT,
                    lambda t, _: {"status": "rejected"},
                    marker,
                )
            restore = {k: before.get(k) for k in _TRIPLE_EDITABLE}
            return self._graph.write_tx(
                self._set_triple_tx,
                change.target_id,
                current,
                author,
                Op.TRIPLE_REVERT,
                lambda t, _: restore,
                marker,
            )
        if kind == "entity":
            if change.op == Op.ENTITY_MERGE.value:
                return self._graph.write_tx(self._unmerge_tx, change, author, marker)
            if "source" in before:
                raise InvalidArgument(f"change {seq} undid a merge; merge the entities again instead")
            restore = {k: before.get(k) for k in _ENTITY_EDITABLE}
            return self._graph.write_tx(
                self._set_entity_tx,
                change.target_id,
                after.get("rev") or 1,
                author,
                Op.ENTITY_REVERT,
                lambda e: restore,
                marker,
            )
        raise InvalidArgument(f"change {seq} ({change.op}) cannot be reverted; re-ingest the source instead")

    # -- internals: clauses ---------------------------------------------------------------------
    def _clause_state(self, clause_id: str) -> dict[str, Any]:
        rows = self._graph.read(q.EDIT_CLAUSE_STATE, clause_id=clause_id)
        if not rows:
            raise NotFound(f"clause {clause_id} not found; check the id (kgqa kg clause ID)")
        return {**rows[0]["clause"], "section_title": rows[0]["section_title"]}

    def _extract(self, state: Mapping[str, Any], text: str) -> tuple[Extraction, ClauseNode]:
        """Re-extract triples, entities and references of one clause with new text (no graph writes).

        The clause is extracted as a one-clause document of its section, so the rule extractor
        sees the same topic (the section title) as it did at ingestion.
        """
        clause_id = state["clause_id"]
        node = ClauseNode(
            clause_id=clause_id,
            number=state["number"] or "",
            ordinal=state["ordinal"] or 0,
            text=text,
            page_start=state["page_start"] or 1,
            page_end=state["page_end"] or 1,
            section_id=state["section_id"] or "",
            sha256=text_hash(text),
            chunks=chunk_text(clause_id, text, self._chunk),
        )
        doc = self._graph.read(q.KNOWN_DOCUMENTS)
        known: dict[str, list[str]] = {}
        title = state["doc_id"]
        for r in doc:
            remember_document(known, r["doc_id"], r["title"])
            if r["doc_id"] == state["doc_id"]:
                title = r["title"] or title
        section = SectionNode(node.section_id, "", state.get("section_title") or "", 1, 0, None)
        tree = DocumentTree(state["doc_id"], title, "txt", Path(""), "", 1, 0, [section], [node], [])
        if self._extractor is None:
            self._extractor = RuleTripleExtractor()
        return self._extractor.extract(tree, known), node

    def _active_clause(self, tx: neo4j.ManagedTransaction, clause_id: str) -> dict[str, Any]:
        row = tx.run(q.EDIT_CLAUSE_STATE, clause_id=clause_id).single()
        if row is None:
            raise NotFound(f"clause {clause_id} not found; check the id (kgqa kg clause ID)")
        return dict(row["clause"])

    def _new_version_tx(
        self,
        tx: neo4j.ManagedTransaction,
        clause_id: str,
        node: ClauseNode,
        extraction: Extraction,
        expected_version: int,
        author: Author,
        op: Op,
        marker: dict[str, Any] | None,
    ) -> EditResult:
        c = self._active_clause(tx, clause_id)
        if c["status"] != "active":
            raise InvalidArgument(f"clause {clause_id} is {c['status']}; restore it before editing its text")
        _check_version(clause_id, expected_version, c["version"])
        if c["sha256"] == node.sha256:
            raise InvalidArgument(
                f"clause {clause_id} v{c['version']} already has this text; nothing to change"
            )
        at = _now()
        targets, texts = refs_by_clause(extraction).get(clause_id, ([], []))
        row = tx.run(
            q.EDIT_CLAUSE_NEW_VERSION,
            clause_id=clause_id,
            version=c["version"],
            text=node.text,
            sha256=node.sha256,
            items_json="[]",
            refs_target=targets,
            refs_text=texts,
            at=at,
        ).single(strict=True)
        new_version = int(row["version"])
        held = [
            dict(r["triple"])
            for r in tx.run(q.EDIT_EDITOR_TRIPLES, clause_id=clause_id, version=c["version"])
        ]
        tx.run(q.SUPERSEDE_TRIPLES, clause_ids=[clause_id], status="superseded").consume()
        tx.run(q.REPLACE_CHUNKS, clause_ids=[clause_id]).consume()
        tx.run(q.CREATE_CHUNKS, chunks=chunk_rows(node.chunks), doc_id=c["doc_id"]).consume()
        tx.run(q.MERGE_ENTITIES, entities=entity_rows(extraction.entities)).consume()
        triples = triple_rows(extraction.triples)  # one-clause extraction: all of this clause
        tx.run(q.CREATE_TRIPLES, triples=triples).consume()
        dropped = self._carry_editor_triples(
            tx, clause_id, node.text, held, {t["triple_id"] for t in triples}
        )
        mentions = [{"clause_id": cid, "entity_id": eid} for cid, eid in sorted(set(extraction.mentions))]
        tx.run(q.CREATE_MENTIONS, mentions=mentions).consume()
        tx.run(q.RESOLVE_REFERENCES, doc_ids=[c["doc_id"]], title_keys=[]).consume()
        before = {"version": c["version"], "status": "active", "sha256": c["sha256"], "text": c["text"]}
        after = {
            "version": new_version,
            "status": "active",
            "sha256": node.sha256,
            "text": node.text,
            **({"dropped_triples": dropped} if dropped else {}),
            **(marker or {}),
        }
        seq = append_changes(
            tx, [Change(op, clause_id, new_version, before=before, after=after)], author, at=at
        )
        return EditResult(
            seq, op.value, clause_id, new_version, triples=len(triples), dropped_triples=tuple(dropped)
        )

    @staticmethod
    def _carry_editor_triples(
        tx: neo4j.ManagedTransaction,
        clause_id: str,
        text: str,
        held: list[dict[str, Any]],
        extracted: set[str],
    ) -> list[str]:
        """Carry the editor's triples of the old version to the new one where the new text still
        states their values (asserted ones stay asserted); return the ids of those dropped."""
        dropped: list[str] = []
        for t in held:
            if t["triple_id"] in extracted:  # the new text states it: extraction made it again
                continue
            quals = json.loads(t.get("qualifiers_json") or "{}")
            missing = unstated_values(t["subject"], t["object"], quals, text)
            if missing and not t.get("asserted"):
                dropped.append(t["triple_id"])
                continue
            tx.run(
                q.EDIT_CREATE_TRIPLE,
                clause_id=clause_id,
                triple_id=t["triple_id"],
                subject=t["subject"],
                predicate=t["predicate"],
                object=t["object"],
                qualifiers_json=t.get("qualifiers_json") or "{}",
                asserted=bool(missing),
                assert_reason=t.get("assert_reason") if missing else None,
                subject_entities=[entity_id(k, t["subject"]) for k in ("party", "concept")],
                object_entities=[entity_id(k, t["object"]) for k in ("party", "concept", "document")],
            ).consume()
        return dropped

    def _status_tx(
        self,
        tx: neo4j.ManagedTransaction,
        clause_id: str,
        status: str,
        expected_version: int,
        author: Author,
        op: Op,
        marker: dict[str, Any] | None,
    ) -> EditResult:
        c = self._active_clause(tx, clause_id)
        _check_version(clause_id, expected_version, c["version"])
        if c["status"] == status:
            raise InvalidArgument(f"clause {clause_id} v{c['version']} is already {status}")
        at = _now()
        tx.run(
            q.EDIT_CLAUSE_SET_STATUS, clause_id=clause_id, version=c["version"], status=status, at=at
        ).consume()
        if status == "retired":
            tx.run(q.SUPERSEDE_TRIPLES, clause_ids=[clause_id], status="retired").consume()
            tx.run(q.REPLACE_CHUNKS, clause_ids=[clause_id]).consume()
        else:
            tx.run(
                q.EDIT_REACTIVATE_TRIPLES, clause_id=clause_id, version=c["version"], from_status="retired"
            ).consume()
            chunks = chunk_rows(chunk_text(clause_id, c["text"] or "", self._chunk))
            tx.run(q.CREATE_CHUNKS, chunks=chunks, doc_id=c["doc_id"]).consume()
        order = [r["clause_id"] for r in tx.run(q.EDIT_DOCUMENT_ORDER, doc_id=c["doc_id"])]
        tx.run(q.RELINK_NEXT, doc_id=c["doc_id"], order=order).consume()
        before = {"version": c["version"], "status": c["status"], "sha256": c["sha256"]}
        after = {"version": c["version"], "status": status, "sha256": c["sha256"], **(marker or {})}
        seq = append_changes(
            tx, [Change(op, clause_id, c["version"], before=before, after=after)], author, at=at
        )
        return EditResult(seq, op.value, clause_id, c["version"])

    def _revert_clause(
        self, change: ChangeRecord, before: dict, after: dict, author: Author, marker: dict[str, Any]
    ) -> EditResult:
        """Undo a clause Change: a status flip flips back; a text change brings the old text back
        as a new version. Ingestion's Changes record no status: an add left it active, a retire
        retired."""
        cid = change.target_id
        if change.op == Op.CLAUSE_PENDING.value:
            raise InvalidArgument(
                f"change {change.seq} stored the source's text as a pending version; nothing to undo "
                "(adopt that text with an edit, or leave it)"
            )
        was = None if not before else before.get("status", "active")
        now = after.get("status", "active") if after else "retired"
        expected = int((after or before)["version"])
        if was is None:  # an add: undo by retiring
            return self._graph.write_tx(
                self._status_tx, cid, "retired", expected, author, Op.CLAUSE_REVERT, marker
            )
        if was != now:
            return self._graph.write_tx(self._status_tx, cid, was, expected, author, Op.CLAUSE_REVERT, marker)
        rows = self._graph.read(q.EDIT_CLAUSE_VERSION, clause_id=cid, version=before["version"])
        if not rows:
            raise NotFound(f"clause {cid} v{before['version']} is no longer stored; nothing to revert to")
        state = self._clause_state(cid)
        extraction, node = self._extract(state, rows[0]["text"] or "")
        return self._graph.write_tx(
            self._new_version_tx, cid, node, extraction, expected, author, Op.CLAUSE_REVERT, marker
        )

    # -- internals: triples ---------------------------------------------------------------------
    def _clean(self, text: str) -> str:
        if self._redact is not None:
            text, _ = self._redact(text)
        return text.strip()

    def _clean_values(self, values: TripleValues) -> TripleValues:
        quals = {k: (self._clean(v) if isinstance(v, str) else v) for k, v in values.qualifiers.items()}
        return TripleValues(self._clean(values.subject), values.predicate, self._clean(values.object), quals)

    def _add_triple_tx(
        self,
        tx: neo4j.ManagedTransaction,
        clause_id: str,
        values: TripleValues,
        expected_version: int,
        author: Author,
        force: bool,
    ) -> EditResult:
        c = self._active_clause(tx, clause_id)
        if c["status"] != "active":
            raise InvalidArgument(f"clause {clause_id} is {c['status']}; restore it before adding triples")
        _check_version(clause_id, expected_version, c["version"])
        tid = triple_id(clause_id, values.predicate, values.subject, values.object)
        existing = tx.run(q.EDIT_TRIPLE_STATE, triple_id=tid).single()
        if existing is not None and existing["triple"]["version"] == c["version"]:
            raise InvalidArgument(
                f"clause {clause_id} already states this triple ({tid}); confirm it instead"
            )
        missing = unstated_values(values.subject, values.object, values.qualifiers, c["text"] or "")
        if missing and not force:
            raise UnsupportedValue(
                f"the triple ({values.subject}, {values.predicate}, {values.object})", missing
            )
        row = tx.run(
            q.EDIT_CREATE_TRIPLE,
            clause_id=clause_id,
            triple_id=tid,
            subject=values.subject,
            predicate=values.predicate,
            object=values.object,
            qualifiers_json=json.dumps(values.qualifiers, ensure_ascii=False),
            asserted=bool(missing),
            assert_reason=author.reason if missing else None,
            subject_entities=[entity_id(k, values.subject) for k in ("party", "concept")],
            object_entities=[entity_id(k, values.object) for k in ("party", "concept", "document")],
        ).single(strict=True)
        t = row["triple"]
        at = _now()
        after = _triple_snapshot(t)
        seq = append_changes(tx, [Change(Op.TRIPLE_ADD, tid, t["version"], after=after)], author, at=at)
        return EditResult(seq, Op.TRIPLE_ADD.value, tid, t["rev"], asserted=bool(missing))

    def _set_triple_tx(
        self,
        tx: neo4j.ManagedTransaction,
        tid: str,
        expected_version: int,
        author: Author,
        op: Op,
        change: Any,
        marker: dict[str, Any] | None = None,
    ) -> EditResult:
        row = tx.run(q.EDIT_TRIPLE_STATE, triple_id=tid).single()
        if row is None:
            raise NotFound(f"triple {tid} not found; see `kgqa kg clause ID` for the triples of a clause")
        t = row["triple"]
        if row["clause_status"] != "active":
            raise InvalidArgument(
                f"triple {tid} belongs to a {row['clause_status']} clause version; edit the clause"
            )
        _check_version(tid, expected_version, t["rev"])
        props = change(t, row["clause_text"] or "")
        new = tx.run(q.EDIT_SET_TRIPLE, triple_id=tid, version=t["version"], props=props).single(strict=True)[
            "triple"
        ]
        after = {**_triple_snapshot(new), **(marker or {})}
        seq = append_changes(
            tx, [Change(op, tid, t["version"], before=_triple_snapshot(t), after=after)], author, at=_now()
        )
        return EditResult(seq, op.value, tid, new["rev"], asserted=bool(new.get("asserted")))

    # -- internals: entities --------------------------------------------------------------------
    def _entity(self, tx: neo4j.ManagedTransaction, eid: str) -> neo4j.Record:
        row = tx.run(q.EDIT_ENTITY_STATE, entity_id=eid).single()
        if row is None:
            raise NotFound(f"entity {eid} not found (ids look like party:施工单位)")
        return row

    def _set_entity_tx(
        self,
        tx: neo4j.ManagedTransaction,
        eid: str,
        expected_version: int,
        author: Author,
        op: Op,
        change: Any,
        marker: dict[str, Any] | None = None,
    ) -> EditResult:
        e = self._entity(tx, eid)["entity"]
        _check_version(eid, expected_version, e["rev"])
        new = tx.run(q.EDIT_SET_ENTITY, entity_id=eid, props=change(e)).single(strict=True)["entity"]
        after = {**_entity_snapshot(new), **(marker or {})}
        seq = append_changes(
            tx, [Change(op, eid, before=_entity_snapshot(e), after=after)], author, at=_now()
        )
        return EditResult(seq, op.value, eid, new["rev"])

    def _merge_tx(
        self,
        tx: neo4j.ManagedTransaction,
        source_id: str,
        target_id: str,
        expected_version: int,
        expected_source_version: int,
        author: Author,
    ) -> EditResult:
        src, dst = self._entity(tx, source_id), self._entity(tx, target_id)
        _check_version(target_id, expected_version, dst["entity"]["rev"])
        _check_version(source_id, expected_source_version, src["entity"]["rev"])
        if src["entity"].get("status") == "merged":
            raise InvalidArgument(
                f"entity {source_id} is already merged into {src['entity'].get('merged_into')}"
            )
        edges = {k: [list(x) for x in src[k]] for k in ("mentions", "subject_of", "object_of")}
        tx.run(
            q.EDIT_MOVE_ENTITY_EDGES,
            from_id=source_id,
            to_id=target_id,
            **edges,
            keep_mentions=[],
            keep_subject_of=[],
            keep_object_of=[],
        ).consume()
        d = dst["entity"]
        aliases = [
            a
            for a in [*(d.get("aliases") or []), src["entity"]["name"], *(src["entity"].get("aliases") or [])]
            if a and a != d["name"]
        ]
        new = tx.run(
            q.EDIT_SET_ENTITY, entity_id=target_id, props={"aliases": list(dict.fromkeys(aliases))}
        ).single(strict=True)["entity"]
        gone = tx.run(
            q.EDIT_SET_ENTITY, entity_id=source_id, props={"status": "merged", "merged_into": target_id}
        ).single(strict=True)["entity"]
        had = {k: [list(x) for x in dst[k]] for k in ("mentions", "subject_of", "object_of")}
        before = {
            **_entity_snapshot(d),
            "source_id": source_id,
            "source": _entity_snapshot(src["entity"]),
            "moved": edges,
            "target_had": had,
        }
        after = {**_entity_snapshot(new), "source": _entity_snapshot(gone)}
        seq = append_changes(
            tx, [Change(Op.ENTITY_MERGE, target_id, before=before, after=after)], author, at=_now()
        )
        return EditResult(seq, Op.ENTITY_MERGE.value, target_id, new["rev"])

    def _unmerge_tx(
        self, tx: neo4j.ManagedTransaction, change: ChangeRecord, author: Author, marker: dict[str, Any]
    ) -> EditResult:
        before, after = change.before or {}, change.after or {}
        target_id, source_id, source = change.target_id, before["source_id"], before["source"]
        dst, src = self._entity(tx, target_id)["entity"], self._entity(tx, source_id)["entity"]
        _check_version(target_id, int(after["rev"]), int(dst["rev"]))
        _check_version(source_id, int(after["source"]["rev"]), int(src["rev"]))
        moved, had = before["moved"], before["target_had"]
        tx.run(
            q.EDIT_MOVE_ENTITY_EDGES,
            from_id=target_id,
            to_id=source_id,
            **moved,
            keep_mentions=had["mentions"],
            keep_subject_of=had["subject_of"],
            keep_object_of=had["object_of"],
        ).consume()
        new = tx.run(q.EDIT_SET_ENTITY, entity_id=target_id, props={"aliases": before.get("aliases")}).single(
            strict=True
        )["entity"]
        tx.run(
            q.EDIT_SET_ENTITY,
            entity_id=source_id,
            props={"status": source.get("status"), "merged_into": source.get("merged_into")},
        ).consume()
        result_before = {**_entity_snapshot(dst), "source_id": source_id, "source": _entity_snapshot(src)}
        result_after = {**_entity_snapshot(new), **marker}
        seq = append_changes(
            tx,
            [Change(Op.ENTITY_REVERT, target_id, before=result_before, after=result_after)],
            author,
            at=_now(),
        )
        return EditResult(seq, Op.ENTITY_REVERT.value, target_id, new["rev"])
