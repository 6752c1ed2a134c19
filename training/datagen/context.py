"""What a pair's prompt shows and what its answer is verified against, built from one snapshot.

The prompt of a pair (at export) and the evidence of its answer (at scoring) must be the same
clauses with the same text, or the verifier would pass answers the model could not have written
from its prompt. Both are built here. A table pair's cited clause carries the table rendered
after its text, because tables are not clauses and an answer about a row cites the clause the
table belongs to.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from kg.prompting import ContextClause
from kg.tables import render_table as kg_render_table
from kg.verifier import EvidenceClause, TripleFact
from training.datagen.types import GraphSnapshot, QAPair, SourceClause, SourceTable


def render_table(table: SourceTable) -> str:
    """A table as text lines a model can quote (:func:`kg.tables.render_table`, which the verifier uses)."""
    return kg_render_table(table.caption, table.header, table.rows)


def clause_text(clause: SourceClause, pair: QAPair) -> str:
    """The clause text as this pair shows it (with its table appended for table pairs)."""
    table_text = pair.extra.get("table_text") if clause.clause_id in pair.gold else None
    return f"{clause.text}\n{table_text}" if table_text else clause.text


def context_order(pair: QAPair) -> list[str]:
    """The context ids in prompt order: shuffled by the pair id, so gold is not always first."""
    ids = list(dict.fromkeys(pair.context_ids))
    random.Random(pair.pair_id).shuffle(ids)
    return ids


def build_contexts(pair: QAPair, snapshot: GraphSnapshot) -> list[ContextClause]:
    """The clauses the pair's prompt shows, in prompt order (ids missing from the snapshot skipped)."""
    out: list[ContextClause] = []
    for cid in context_order(pair):
        clause = snapshot.clauses.get(cid)
        if clause is None:
            continue
        out.append(
            ContextClause(
                clause_id=clause.clause_id,
                doc_title=clause.doc_title,
                number=clause.number,
                text=clause_text(clause, pair),
                section_path=tuple(clause.section_path),
            )
        )
    return out


def to_evidence(clause: SourceClause, text: str | None = None) -> EvidenceClause:
    """A snapshot clause as the verifier's evidence (the active version)."""
    return EvidenceClause(
        clause_id=clause.clause_id,
        version=clause.version,
        status="active",
        doc_id=clause.doc_id,
        doc_title=clause.doc_title,
        doc_version=1,
        number=clause.number,
        text=text if text is not None else clause.text,
        section_path=list(clause.section_path),
        page_start=clause.page_start,
        page_end=clause.page_end,
        triples=[TripleFact(t.subject, t.predicate, t.object, dict(t.qualifiers)) for t in clause.triples],
    )


def build_evidence(pair: QAPair, snapshot: GraphSnapshot, ids: Sequence[str] | None = None) -> dict[str, EvidenceClause]:
    """Evidence for verifying the pair's answer: every context clause (and ``ids``) in the snapshot."""
    wanted = list(dict.fromkeys([*pair.gold, *pair.context_ids, *(ids or ())]))
    return {
        cid: to_evidence(snapshot.clauses[cid], clause_text(snapshot.clauses[cid], pair))
        for cid in wanted
        if cid in snapshot.clauses
    }


__all__ = ["build_contexts", "build_evidence", "clause_text", "context_order", "render_table", "to_evidence"]
