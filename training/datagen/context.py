"""What a pair's prompt shows and what its answer is verified against, built from one snapshot.

The prompt of a pair (at export) and the evidence of its answer (at scoring) must be the same
clauses with the same text, or the verifier would pass answers the model could not have written
from its prompt. Both are built here. A table pair's cited clause carries the table rendered
after its text, because tables are not clauses and an answer about a row cites the clause the
table belongs to.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from rapidfuzz import fuzz

from kg.citations import strip_markers
from kg.prompting import ContextClause
from kg.tables import render_table as kg_render_table
from kg.verifier import EvidenceClause, TripleFact
from training.datagen.types import GraphSnapshot, QAPair, SourceClause, SourceTable

#: A clause sentence counts as quoted by an answer when this share of it matches the answer.
QUOTE_MATCH = 85
GAP = "……"


def render_table(table: SourceTable) -> str:
    """A table as text lines a model can quote (:func:`kg.tables.render_table`, which the verifier uses)."""
    return kg_render_table(table.caption, table.header, table.rows)


def clause_text(clause: SourceClause, pair: QAPair) -> str:
    """The clause text as this pair shows it (with its table appended for table pairs)."""
    table_text = pair.extra.get("table_text") if clause.clause_id in pair.gold else None
    return f"{clause.text}\n{table_text}" if table_text else clause.text


_UNIT = re.compile(r"[^。！？!?\n]+[。！？!?]*")


def excerpt(text: str, answer: str, max_chars: int) -> str:
    """The clause cut to about ``max_chars``: every sentence the answer quotes, then neighbours.

    A prompt must fit the model's training length with its answer (Gemma's tokenizer turns our
    longest clauses into 2,000+ tokens), but the answer must stay supported by what the prompt
    shows: the units the answer quotes (sentences, or table rows: a line each) are always kept,
    whatever the budget; the rest of the budget goes to the units around them (or, for a clause
    the answer does not quote, to the clause's opening). Omitted stretches become ``……``.
    """
    if len(text) <= max_chars:
        return text
    units = [(m.start(), m.end()) for m in _UNIT.finditer(text) if m.group().strip()]
    if not units:
        return text[:max_chars]
    keep = _quoted_units(text, units, strip_markers(answer)) or {0}
    size = sum(units[i][1] - units[i][0] for i in keep)
    frontier = sorted(keep)
    while frontier:
        i = frontier.pop(0)
        for j in (i - 1, i + 1):
            if 0 <= j < len(units) and j not in keep and size + units[j][1] - units[j][0] <= max_chars:
                keep.add(j)
                frontier.append(j)
                size += units[j][1] - units[j][0]
    runs: list[list[int]] = []
    for i in sorted(keep):
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    body = GAP.join(text[units[r[0]][0] : units[r[-1]][1]].strip() for r in runs)
    return (GAP if min(keep) > 0 else "") + body + (GAP if max(keep) < len(units) - 1 else "")


def _quoted_units(text: str, units: list[tuple[int, int]], answer: str) -> set[int]:
    """Units the answer quotes: verbatim ones, and for each answer sentence its best match (a
    table's rows look alike, so only the best row counts)."""
    found = set()
    for i, (a, b) in enumerate(units):
        core = text[a:b].strip().rstrip("。！？!?")
        if len(core) >= 4 and core in answer:
            found.add(i)
    for sentence in _UNIT.findall(answer):
        if len(sentence.strip()) < 8:
            continue
        scores = [fuzz.partial_ratio(sentence, text[a:b]) for a, b in units]
        best = max(range(len(units)), key=scores.__getitem__)
        if scores[best] >= QUOTE_MATCH:
            found.add(best)
    return found


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


def build_evidence(
    pair: QAPair, snapshot: GraphSnapshot, ids: Sequence[str] | None = None
) -> dict[str, EvidenceClause]:
    """Evidence for verifying the pair's answer: every context clause (and ``ids``) in the snapshot."""
    wanted = list(dict.fromkeys([*pair.gold, *pair.context_ids, *(ids or ())]))
    return {
        cid: to_evidence(snapshot.clauses[cid], clause_text(snapshot.clauses[cid], pair))
        for cid in wanted
        if cid in snapshot.clauses
    }


__all__ = [
    "build_contexts",
    "build_evidence",
    "clause_text",
    "context_order",
    "excerpt",
    "render_table",
    "to_evidence",
]
