"""The audit trail: every answer as an Answer node citing exact clause versions, hash-chained.

Each record stores ``record_hash = sha256(canonical content + prev_hash)`` where the content covers
every stored property of the answer and of its CITES edges. Editing any stored answer, quote or
citation, deleting a record or reordering them breaks the chain at that record, and
:meth:`AuditStore.verify_chain` names the first record that does not match.

Answers are appended in groups (:meth:`AuditStore.append_many`: one transaction and one lock on
the chain head per group); serving queues them through :class:`kg.audit_writer.AuditWriter`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import neo4j

from kg import queries as q
from kg.session import graph_errors
from kgqa.errors import GraphError, NotFound

HASHED_PROPS = (
    "answer_id",
    "question",
    "answer",
    "status",
    "model_id",
    "graph_version",
    "at",
    "actor",
    "unsupported_json",
    "timings_json",
)


@dataclass
class AuditCitation:
    clause_id: str
    clause_version: int
    quote: str
    quote_start: int
    quote_end: int
    support_score: float
    verified: bool
    ord: int = 0


@dataclass
class AuditEntry:
    """What is stored for one answer. ``actor`` is the caller's key id, never the key."""

    answer_id: str
    question: str
    answer: str
    status: str
    model_id: str
    graph_version: int | None  # None: stamped with the graph version inside the append transaction
    at: str
    actor: str
    unsupported_json: str = "[]"
    timings_json: str = "{}"
    citations: list[AuditCitation] = field(default_factory=list)


@dataclass
class StoredEntry:
    entry: AuditEntry
    seq: int
    prev_hash: str
    record_hash: str


@dataclass(frozen=True)
class CitingAnswer:
    """A stored answer that cited some version of a clause (newest first in :meth:`AuditStore.citing`)."""

    answer_id: str
    question: str
    status: str
    created_at: str
    clause_version: int
    quote: str
    model_id: str


@dataclass
class ChainReport:
    """The result of a chain check, whole or one step of it (:meth:`AuditStore.verify_chain_step`).

    Attributes:
        ok: every record walked so far matches its hash and links to the one before.
        checked: records walked (they are seq 1..checked: a step continues after it).
        first_bad_seq / first_bad_answer_id / reason: the first record that does not match.
        done: the walk reached the chain head (False: a step that stopped at its page limit).
        last_hash: the hash of record ``checked``: what the next step links to.
        total: the chain head's record count when the step ran (progress).
    """

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    first_bad_answer_id: str | None = None
    reason: str | None = None
    done: bool = True
    last_hash: str = ""
    total: int | None = None


@dataclass(frozen=True)
class AnswerFilter:
    """What an auditor narrows the trail to; None (or "") = any.

    Attributes:
        at_from: answers recorded at or after this ISO-8601 UTC time.
        at_to: answers recorded before this ISO-8601 UTC time.
        actor: the caller's key id (``key-…``).
        status: VERIFIED, UNVERIFIED or NO_EVIDENCE.
        model_id: the model that answered, exactly as recorded.
        clause_id: answers citing any version of this clause.
    """

    at_from: str | None = None
    at_to: str | None = None
    actor: str | None = None
    status: str | None = None
    model_id: str | None = None
    clause_id: str | None = None

    def params(self) -> dict[str, str | None]:
        """The query parameters: blanks become None (no filter)."""
        return {k: (getattr(self, k) or None) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class CitedVersion:
    clause_id: str
    clause_version: int


@dataclass(frozen=True)
class AnswerListing:
    """One answer as a filtered list of the trail shows it."""

    answer_id: str
    seq: int
    at: str
    actor: str
    status: str
    model_id: str
    graph_version: int
    question: str
    citations: tuple[CitedVersion, ...]


def record_hash(entry: AuditEntry, prev_hash: str) -> str:
    """sha256 over the canonical JSON of the entry (citations in order) and the previous hash."""
    content = {k: getattr(entry, k) for k in HASHED_PROPS}
    content["citations"] = [dict(vars(c)) for c in sorted(entry.citations, key=lambda c: c.ord)]
    blob = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + "\n" + blob).encode("utf-8")).hexdigest()


def _entry_from_record(answer: dict[str, Any], citations: list[dict[str, Any]]) -> StoredEntry:
    entry = AuditEntry(
        **{k: answer.get(k) for k in HASHED_PROPS},
        citations=[AuditCitation(**c) for c in citations if c is not None],
    )
    return StoredEntry(entry, answer.get("seq"), answer.get("prev_hash"), answer.get("record_hash"))


def _citing_answer(r: Mapping[str, Any]) -> CitingAnswer:
    """One row of ``ANSWERS_CITING_CLAUSE`` or ``ANSWERS_CITING_OLDER`` (they return the same columns)."""
    return CitingAnswer(
        answer_id=r["answer_id"],
        question=r["question"],
        status=r["status"],
        created_at=str(r["created_at"]),
        clause_version=int(r["clause_version"]),
        quote=r["quote"] or "",
        model_id=r["model_id"] or "",
    )


class AuditStore:
    """Appends answers to the hash chain and reads them back for auditors.

    Args:
        driver: an open ``neo4j.Driver``.
        database: target database; ``None`` uses the server default.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._driver = driver
        self._database = database

    def append(self, entry: AuditEntry) -> StoredEntry:
        """Append one answer (a group of one; see :meth:`append_many`).

        Raises:
            GraphError: the answer id is already in the trail.
            GraphUnavailable: Neo4j cannot be reached.
        """
        stored = self.append_many([entry])
        if not stored:
            raise GraphError(f"answer {entry.answer_id} is already in the audit trail")
        return stored[0]

    def append_many(self, entries: Sequence[AuditEntry]) -> list[StoredEntry]:
        """Append a group of answers in one write transaction: one chain-head lock for the group.

        Entries whose ``graph_version`` is None are stamped with the graph version read in that
        transaction. Ids already in the trail are skipped (a journal replayed after a crash may
        hold answers whose commit had gone through), so appending is idempotent per answer id.

        Returns:
            The answers appended, in chain order.

        Raises:
            GraphUnavailable: Neo4j cannot be reached.
        """
        if not entries:
            return []
        for entry in entries:
            for i, c in enumerate(entry.citations):
                c.ord = i
        with graph_errors(), self._driver.session(database=self._database) as session:
            return session.execute_write(self._append_tx, list(entries))

    @staticmethod
    def _append_tx(tx: neo4j.ManagedTransaction, entries: list[AuditEntry]) -> list[StoredEntry]:
        head = tx.run(
            q.RESERVE_ANSWER_SEQ, n=len(entries), answer_ids=[e.answer_id for e in entries]
        ).single()
        seq, prev = head["head_seq"], head["head_hash"] or ""
        present = set(head["present"])
        stored: list[StoredEntry] = []
        rows: list[dict[str, Any]] = []
        for entry in dict((e.answer_id, e) for e in entries if e.answer_id not in present).values():
            if entry.graph_version is None:
                # read in the same transaction as the write: no extra round trip, no race with ingestion
                entry.graph_version = head["graph_version"]
            seq += 1
            digest = record_hash(entry, prev)
            rows.append(
                {
                    "answer_id": entry.answer_id,
                    "props": {k: getattr(entry, k) for k in HASHED_PROPS if k != "answer_id"},
                    "seq": seq,
                    "prev_hash": prev,
                    "record_hash": digest,
                    "citations": [dict(vars(c)) for c in entry.citations],
                }
            )
            stored.append(StoredEntry(entry, seq, prev, digest))
            prev = digest
        tx.run(q.CREATE_ANSWERS, head_seq=seq, head_hash=prev, answers=rows).consume()
        return stored

    def present(self, answer_ids: Sequence[str]) -> set[str]:
        """Which of ``answer_ids`` are in the trail (one read)."""
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.ANSWERS_PRESENT, answer_ids=list(answer_ids), database_=self._database, routing_="r"
            )
        return {r["answer_id"] for r in records}

    def get(self, answer_id: str) -> StoredEntry:
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.GET_ANSWER, answer_id=answer_id, database_=self._database, routing_="r"
            )
        if not records:
            raise NotFound(f"answer {answer_id} is not in the audit trail")
        return _entry_from_record(dict(records[0]["answer"]), records[0]["citations"])

    def citing(self, clause_id: str, limit: int = 50) -> list[CitingAnswer]:
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.ANSWERS_CITING_CLAUSE,
                clause_id=clause_id,
                limit=limit,
                database_=self._database,
                routing_="r",
            )
        return [_citing_answer(r) for r in records]

    def citing_older(
        self, clause_ids: Sequence[str], active: Mapping[str, int], limit: int = 50
    ) -> list[tuple[str, CitingAnswer]]:
        """(clause id, answer) for answers that cited a version of one of ``clause_ids`` older than
        its ``active`` one (any version of a clause with none active), newest first, in one read."""
        refs = [{"clause_id": cid, "version": active.get(cid)} for cid in dict.fromkeys(clause_ids)]
        if not refs:
            return []
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.ANSWERS_CITING_OLDER, refs=refs, limit=limit, database_=self._database, routing_="r"
            )
        return [(r["clause_id"], _citing_answer(r)) for r in records]

    def search(
        self, where: AnswerFilter, limit: int = 50, before_seq: int | None = None
    ) -> list[AnswerListing]:
        """Answers matching ``where``, newest first; page on with ``before_seq`` = the last seq seen."""
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.ANSWER_SEARCH,
                where.params(),
                database_=self._database,
                routing_="r",
                limit=limit,
                before_seq=before_seq,
            )
        return [
            AnswerListing(
                answer_id=r["answer_id"],
                seq=r["seq"],
                at=r["at"] or "",
                actor=r["actor"] or "",
                status=r["status"] or "",
                model_id=r["model_id"] or "",
                graph_version=r["graph_version"] or 0,
                question=r["question"] or "",
                citations=tuple(CitedVersion(c["clause_id"], c["clause_version"]) for c in r["citations"]),
            )
            for r in records
        ]

    def verify_chain(self, page: int = 500) -> ChainReport:
        """Walk the whole chain in seq order; report the first record whose hash or link does not match."""
        report = ChainReport(ok=True, checked=0, done=False)
        while report.ok and not report.done:
            report = self.verify_chain_step(report.checked, report.last_hash, page)
        return report

    def verify_chain_step(self, after: int, prev: str, limit: int = 500) -> ChainReport:
        """Check the ``limit`` records after seq ``after``, given ``prev``, the hash of record ``after``.

        A whole check is these steps in a row, each carrying the last one's ``checked`` and
        ``last_hash``; the console runs them one request each, so no request grows with the
        trail and any server process can take the next step (the state is in the request).
        A wrong ``prev`` cannot hide anything: the next record then fails to link.
        """
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.ANSWER_CHAIN_PAGE, after=after, limit=limit, database_=self._database, routing_="r"
            )
        checked, expected_seq = after, after + 1
        for r in records:
            stored = _entry_from_record(dict(r["answer"]), r["citations"])
            aid = stored.entry.answer_id
            if stored.seq != expected_seq:
                return ChainReport(False, checked, expected_seq, aid, f"record {expected_seq} is missing")
            if stored.prev_hash != prev:
                return ChainReport(
                    False, checked, stored.seq, aid, "prev_hash does not link to the record before"
                )
            if record_hash(stored.entry, prev) != stored.record_hash:
                return ChainReport(False, checked, stored.seq, aid, "content does not match its stored hash")
            prev, checked, expected_seq = stored.record_hash, stored.seq, expected_seq + 1
        head = self._chain_head()
        if len(records) == limit and head["seq"] > checked:
            return ChainReport(True, checked, done=False, last_hash=prev, total=head["seq"])
        return self._check_head(head, prev, checked)

    def _chain_head(self) -> dict[str, Any]:
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.ANSWER_CHAIN_HEAD, database_=self._database, routing_="r"
            )
        return dict(records[0])

    @staticmethod
    def _check_head(head: dict[str, Any], prev: str, checked: int) -> ChainReport:
        """Catch truncation: the chain head must point at the last record walked."""
        if head["seq"] != checked or head["last_hash"] != prev:
            return ChainReport(
                False,
                checked,
                checked + 1,
                None,
                f"chain head says {head['seq']} records; record {checked + 1} is missing",
                total=head["seq"],
            )
        return ChainReport(ok=True, checked=checked, last_hash=prev, total=checked)
