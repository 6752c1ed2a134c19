"""The change log: every change of the graph's content as a ``Change`` node with its own ``seq``.

The graph version is the last ``Change.seq``. Whatever changes clauses, triples or documents
(ingestion today, a knowledge manager's edit tomorrow) calls :func:`append_changes` inside the
same transaction as the change itself, so the log can never disagree with the graph: both are
committed together or not at all.

Sequence numbers come from one ``Sequence {name: 'change'}`` node; reserving a range takes its
write lock, so concurrent transactions get disjoint, gap-free ranges in commit order.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import neo4j

from kg import queries as q

TargetKind = Literal["clause", "document", "triple", "entity"]


class Op(enum.StrEnum):
    """What a Change did; the value is stored in ``Change.op`` (``<target kind>.<verb>``)."""

    CLAUSE_ADD = "clause.add"
    CLAUSE_UPDATE = "clause.update"
    CLAUSE_RETIRE = "clause.retire"
    DOCUMENT_REPLACE = "document.replace"
    # a knowledge manager's edits (kg/edits.py); a revert is a new Change of the target's kind
    CLAUSE_EDIT = "clause.edit"
    CLAUSE_PENDING = "clause.pending"  # re-ingestion met a hand edit: the source's text waits
    CLAUSE_RESTORE = "clause.restore"
    CLAUSE_REVERT = "clause.revert"
    TRIPLE_ADD = "triple.add"
    TRIPLE_CORRECT = "triple.correct"
    TRIPLE_CONFIRM = "triple.confirm"
    TRIPLE_REJECT = "triple.reject"
    TRIPLE_REVERT = "triple.revert"
    ENTITY_MERGE = "entity.merge"
    ENTITY_RENAME = "entity.rename"
    ENTITY_REVERT = "entity.revert"

    @property
    def target_kind(self) -> TargetKind:
        """The kind of node the Change is ON: the part of the value before the dot."""
        return cast(TargetKind, self.value.split(".", 1)[0])


@dataclass(frozen=True)
class Change:
    """One change to append.

    Attributes:
        op: what was done.
        target_id: the clause, document, triple or entity id changed.
        target_version: for a clause, the version the Change is ON (the new version of an add or
            update, the last version of a retire); for a triple, the version of the triple node
            (its clause's version); None for a document or an entity.
        before: the state before (JSON-serializable), None for an add.
        after: the state after, None for a retire.
    """

    op: Op
    target_id: str
    target_version: int | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Author:
    """Who made a set of changes and why; recorded on each of their Change nodes.

    ``actor`` is a key id or a service name, never a secret; ``role`` the actor's role.
    """

    actor: str
    role: str
    reason: str


def _dump(payload: Mapping[str, Any] | None) -> str | None:
    return None if payload is None else json.dumps(dict(payload), ensure_ascii=False)


def append_changes(
    tx: neo4j.ManagedTransaction,
    changes: Sequence[Change],
    author: Author,
    *,
    at: str,
    batch_size: int = 500,
) -> int:
    """Append ``changes`` to the log inside ``tx`` and return the graph version after them.

    Each Change gets the next ``seq`` and an ``ON`` edge to its target (the clause version or the
    document) when that node exists in the transaction.

    Args:
        tx: the transaction that makes the changes themselves.
        changes: in the order their seqs are given.
        author: who and why, the same for all of them.
        at: ISO-8601 time of the changes.
        batch_size: rows per ``UNWIND`` statement.

    Returns:
        The last seq written, or the current graph version when ``changes`` is empty.
    """
    if not changes:
        return int(tx.run(q.GRAPH_VERSION).single(strict=True)["version"])
    first = int(tx.run(q.RESERVE_SEQ, n=len(changes)).single(strict=True)["first"])
    rows = [
        {
            "seq": first + i,
            "op": ch.op.value,
            "kind": ch.op.target_kind,
            "target_id": ch.target_id,
            "target_version": ch.target_version,
            "before_json": _dump(ch.before),
            "after_json": _dump(ch.after),
        }
        for i, ch in enumerate(changes, start=1)
    ]
    for start in range(0, len(rows), batch_size):
        tx.run(
            q.CREATE_CHANGES,
            changes=rows[start : start + batch_size],
            actor=author.actor,
            role=author.role,
            reason=author.reason,
            at=at,
        ).consume()
    return first + len(changes)


__all__ = ["Author", "Change", "Op", "TargetKind", "append_changes"]
