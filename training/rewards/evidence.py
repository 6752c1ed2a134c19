"""The evidence a batch of completions is judged against, gathered once per batch.

Every GRPO record carries ``contexts``: the clauses its prompt showed, read from the graph when
the dataset was built (``training.datagen.export``). :class:`ContextEvidence` turns the contexts of
a whole batch into verifier evidence once (deduplicated by clause id, version and text), without
touching Neo4j. :class:`GraphBatchEvidence` adds ONE ``GraphEvidence.fetch`` of every id cited
anywhere in the batch, so that an id the prompt did not show is still judged by the live graph:
absent (invented), retired/superseded (inactive) or a real clause outside the prompt.

Ids in a record's own contexts are judged by those contexts: they are what the model could read,
and the reward must not punish a faithful quote of its prompt. When the graph has moved on since
the dataset was built, the stale context ids are counted and logged (regenerate the dataset with
``kgqa dataset --since``); the record's text still decides.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from kg.verifier import EvidenceClause, EvidenceSource, TripleFact

log = structlog.get_logger(__name__)


def record_contexts(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The record's ``contexts`` (a list, or the JSON string the GRPO dataset stores)."""
    import json

    contexts = record.get("contexts")
    if contexts is None and record.get("contexts_json"):
        contexts = json.loads(record["contexts_json"])
    return list(contexts or [])


def context_clause(c: Mapping[str, Any]) -> EvidenceClause:
    """One ``contexts`` entry as an active evidence clause (the version the prompt showed)."""
    return EvidenceClause(
        clause_id=c["clause_id"],
        version=int(c.get("version") or 1),
        status="active",
        doc_id=c.get("doc_id") or c["clause_id"].split("/", 1)[0],
        doc_title=c.get("doc_title") or "",
        doc_version=1,
        number=c.get("number") or "",
        text=c.get("text") or "",
        section_path=list(c.get("section_path") or []),
        triples=[
            TripleFact(t.get("subject") or "", t.get("predicate") or "", t.get("object") or "",
                       dict(t.get("qualifiers") or {}))
            for t in c.get("triples") or []
        ],
    )  # fmt: skip


def allowed_ids(record: Mapping[str, Any]) -> set[str]:
    """What an answer to ``record`` may cite: its gold clauses and the clauses its prompt showed."""
    return {*(record.get("gold_clause_ids") or []), *(c["clause_id"] for c in record_contexts(record))}


@dataclass
class BatchEvidence:
    """The clauses of one batch: each record's own contexts first, then the batch-wide pool.

    Attributes:
        own: per record, its contexts by clause id (what its prompt showed).
        pool: every clause known to the batch by id (other records' contexts, graph lookups).
        graph_reads: how many graph fetches building this took (0 or 1).
        stale: context ids whose graph version differs from the version the dataset recorded.
    """

    own: list[dict[str, EvidenceClause]]
    pool: dict[str, EvidenceClause]
    graph_reads: int = 0
    stale: list[str] = field(default_factory=list)

    def for_record(self, index: int) -> Mapping[str, EvidenceClause]:
        return ChainMap(self.own[index], self.pool)


class BatchEvidenceSource(Protocol):
    """Builds the evidence of one batch; called once per batch by :class:`~training.rewards.RewardSuite`."""

    def collect(self, records: Sequence[Mapping[str, Any]], cited_ids: Sequence[str]) -> BatchEvidence: ...


class ContextEvidence:
    """Evidence from the records' ``contexts`` only: no graph access during training."""

    def collect(self, records: Sequence[Mapping[str, Any]], cited_ids: Sequence[str]) -> BatchEvidence:
        built: dict[tuple[str, int, str], EvidenceClause] = {}
        own: list[dict[str, EvidenceClause]] = []
        pool: dict[str, EvidenceClause] = {}
        for record in records:
            mine: dict[str, EvidenceClause] = {}
            for c in record_contexts(record):
                key = (c["clause_id"], int(c.get("version") or 1), c.get("text") or "")
                clause = built.get(key)
                if clause is None:
                    clause = built[key] = context_clause(c)
                mine.setdefault(clause.clause_id, clause)
                pool.setdefault(clause.clause_id, clause)
            own.append(mine)
        return BatchEvidence(own, pool)


class GraphBatchEvidence:
    """Contexts plus one graph fetch of every id cited in the batch.

    Args:
        driver: an open ``neo4j.Driver``; a ``kg.evidence.GraphEvidence`` is built on it.
        source: an evidence source to use instead (a ``GraphEvidence`` you built, or a wrapper).
        database: the Neo4j database (``None``: the server default).
    """

    def __init__(self, driver: Any = None, *, source: EvidenceSource | None = None, database: str | None = None):
        if source is None:
            if driver is None:
                raise ValueError("GraphBatchEvidence needs a neo4j driver or an evidence source")
            from kg.evidence import GraphEvidence

            source = GraphEvidence(driver, database)
        self._source = source
        self._contexts = ContextEvidence()

    def collect(self, records: Sequence[Mapping[str, Any]], cited_ids: Sequence[str]) -> BatchEvidence:
        batch = self._contexts.collect(records, cited_ids)
        ids = list(dict.fromkeys(cited_ids))
        if not ids:
            return batch
        fetched = self._source.fetch(ids)  # the one graph read of this batch
        batch.graph_reads = 1
        for cid, clause in fetched.items():
            known = batch.pool.get(cid)
            if known is None:
                batch.pool[cid] = clause
            elif known.version != clause.version or not clause.active:
                batch.stale.append(cid)
        if batch.stale:
            log.warning("grpo.rewards.stale_contexts", count=len(batch.stale), clause_ids=batch.stale[:5])
        return batch


__all__ = [
    "BatchEvidence",
    "BatchEvidenceSource",
    "ContextEvidence",
    "GraphBatchEvidence",
    "allowed_ids",
    "context_clause",
    "record_contexts",
]
