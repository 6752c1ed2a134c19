"""What pages show, computed from service results: answer text with citation chips, diffs."""

from __future__ import annotations

from dataclasses import dataclass

from kg.citations import parse_citations
from serving.types import AnswerResult, Citation


@dataclass(frozen=True)
class AnswerPart:
    """A run of answer text, or a citation chip (``citation`` set; ``text`` is then the clause id)."""

    text: str
    citation: Citation | None = None
    clause_id: str | None = None


def answer_parts(result: AnswerResult) -> list[AnswerPart]:
    """The answer's text with each ``[[clause_id]]`` marker replaced by a chip for its citation.

    A marker whose clause has no verified citation (the verifier rejected it) stays a chip without
    provenance, so the page never hides that the model cited it.
    """
    by_id: dict[str, Citation] = {}
    for c in result.citations:
        by_id.setdefault(c.clause_id, c)
    parts: list[AnswerPart] = []
    pos = 0
    text = result.text
    for marker in parse_citations(text).markers:
        if marker.start > pos:
            parts.append(AnswerPart(text[pos : marker.start]))
        parts.append(AnswerPart(marker.clause_id, by_id.get(marker.clause_id), marker.clause_id))
        pos = marker.end
    if pos < len(text):
        parts.append(AnswerPart(text[pos:]))
    return parts


__all__ = ["AnswerPart", "answer_parts"]
