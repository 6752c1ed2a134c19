"""The verifier's evidence from the clause graph: cited clauses with their document and triples.

One ``UNWIND`` query fetches every clause an answer cites, so verifying an answer costs one round
trip whatever the number of citations. :meth:`GraphEvidence.fetch` returns the *latest* version
of each id (the active one; for a retired clause its last version), which lets the verifier say
"not active" rather than "unknown"; :meth:`GraphEvidence.fetch_versions` returns exact versions,
for re-checking the answers of an audit trace against the text they cited.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import neo4j

from kg import queries as q
from kg.session import GraphSession
from kg.tables import render_table
from kg.verification.types import EvidenceClause, EvidenceSource, TripleFact

__all__ = ["EvidenceClause", "EvidenceSource", "GraphEvidence", "TripleFact"]


class GraphEvidence:
    """An :class:`EvidenceSource` backed by Neo4j.

    Args:
        driver: an open ``neo4j.Driver`` (built by the composition root).
        database: target database; ``None`` uses the server default.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
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
            render_table(t["caption"], json.loads(t["header_json"]) if t["header_json"] else None,
                         json.loads(t["rows_json"] or "[]"))
            for t in record["tables"]
        ],
    )
