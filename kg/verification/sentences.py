"""Split an answer into sentences and give each the citation markers that belong to it.

A marker belongs to the sentence it ends or follows: in ``A[[x]]。``, ``A。[[x]]`` and
``A[[x]][[y]]。`` the markers cite A; in ``A[[x]]，B。`` the marker also closes A, so B is a
sentence of its own with no marker (strict: it must then be covered by a cited clause on its own
merit). A marker that opens the answer, before any content, belongs to the first sentence.

Sentence ends and content characters are :mod:`zhtext`'s, so an answer splits where
:func:`zhtext.split_sentences` splits the clauses it quotes; the markers are why this walks the
answer itself instead of calling it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kg.citations import parse_citations
from zhtext import CONTENT_CHAR, SENTENCE_ENDS

TERMINATORS = frozenset(SENTENCE_ENDS + "\n")
"""Where an answer sentence ends: zhtext's sentence ends and line breaks (a colon does not)."""
MIN_CONTENT_CHARS = 4


@dataclass
class AnswerSentence:
    """A marker-free sentence and the clause ids of its own markers, in order of appearance."""

    text: str
    clause_ids: list[str] = field(default_factory=list)

    @property
    def has_content(self) -> bool:
        """Sentences such as ``综上：`` say nothing checkable and are not verified."""
        return content_length(self.text) >= MIN_CONTENT_CHARS


def content_length(text: str) -> int:
    """Number of CJK characters, letters and digits (what a claim is made of)."""
    return len(CONTENT_CHAR.findall(text))


def split_sentences(answer: str, malformed: list[str] | None = None) -> list[AnswerSentence]:
    """The answer's sentences with their markers removed and attributed.

    Args:
        answer: the answer with ``[[CLAUSE_ID]]`` markers.
        malformed: near-miss marker strings (from ``parse_citations``) to erase from the
            sentence texts, so that the numbers inside them are not taken for claims.

    Returns:
        Sentences in answer order, including content-free ones (callers skip those).
    """
    markers = parse_citations(answer).markers
    sentences: list[AnswerSentence] = []
    buf: list[str] = []
    ids: list[str] = []
    closed_by_marker = False

    def flush() -> None:
        nonlocal buf, ids, closed_by_marker
        text = "".join(buf)
        for bad in malformed or ():
            text = text.replace(bad, "")
        if text.strip() or ids:
            sentences.append(AnswerSentence(text.strip(), ids))
        buf, ids, closed_by_marker = [], [], False

    pos = 0
    for marker in [*markers, None]:
        end = marker.start if marker is not None else len(answer)
        for ch in answer[pos:end]:
            if closed_by_marker and CONTENT_CHAR.match(ch):
                flush()
            buf.append(ch)
            if ch in TERMINATORS:
                flush()
        if marker is None:
            break
        if content_length("".join(buf)):
            _add(ids, marker.clause_id)
            closed_by_marker = True
        elif sentences and not ids:
            _add(sentences[-1].clause_ids, marker.clause_id)
        else:
            _add(ids, marker.clause_id)
        pos = marker.end
    flush()
    return sentences


def _add(ids: list[str], clause_id: str) -> None:
    if clause_id not in ids:
        ids.append(clause_id)
