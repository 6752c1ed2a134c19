"""Sentence splitting: one rule for clause texts, answers and questions alike.

A sentence ends after a run of end marks (。！？； and their half-width forms) and at a line break;
the marks stay with the sentence they end. Two options cover what the callers differ in:

* ``colon``: a colon also ends a sentence. Rule extraction and quote alignment want that (a colon
  opens a list, and the lead-in is a unit of its own); answers are split without it, so that
  ``根据第五条规定：…`` stays one sentence. A colon between two digits (9:30, 1:2) never ends one.
* ``keep_end``: spans include their end marks (the default) or stop before them.

Spans are trimmed of surrounding whitespace, and text without a content character (``——``, a
stray ``。``) is not a sentence. The verifier, the dataset generator and the extractive backend
split the same way, so a sentence quoted from a clause is a sentence of the answer too.
"""

from __future__ import annotations

from dataclasses import dataclass

from zhtext.patterns import CONTENT_CHAR

SENTENCE_ENDS = "。！？；!?;"
"""Marks that end a sentence (full and half width); a line break ends one as well."""

COLONS = "：:"
"""Colons, which end a sentence only when the caller asks (``colon=True``)."""


@dataclass(frozen=True, slots=True)
class Span:
    """A sentence as ``text[start:end]``."""

    start: int
    end: int


def _is_end(text: str, i: int, ends: str) -> bool:
    ch = text[i]
    if ch not in ends:
        return False
    if ch == ":" and 0 < i < len(text) - 1:  # 9:30, 1:2 are numbers, not ends
        return not (text[i - 1].isdigit() and text[i + 1].isdigit())
    return True


def sentence_spans(text: str, *, colon: bool = False, keep_end: bool = True) -> list[Span]:
    """The sentences of ``text`` as spans, in order.

    Args:
        text: any text (a clause, an answer without markers, a question).
        colon: whether ``：``/``:`` ends a sentence (default False).
        keep_end: whether a span includes the end marks that close it (default True).

    Returns:
        Non-overlapping spans, trimmed of whitespace, each containing a content character.
    """
    ends = SENTENCE_ENDS + COLONS if colon else SENTENCE_ENDS
    spans: list[Span] = []
    start = i = 0
    n = len(text)
    while i < n:
        if text[i] == "\n":
            _add(spans, text, start, i, i)
            start = i = i + 1
        elif _is_end(text, i, ends):
            j = i + 1
            while j < n and _is_end(text, j, ends):
                j += 1
            _add(spans, text, start, i, j if keep_end else i)
            start = i = j
        else:
            i += 1
    _add(spans, text, start, n, n)
    return spans


def _add(spans: list[Span], text: str, start: int, body_end: int, end: int) -> None:
    if not CONTENT_CHAR.search(text, start, body_end):
        return
    while text[start].isspace():
        start += 1
    if end == body_end:
        while text[end - 1].isspace():
            end -= 1
    spans.append(Span(start, end))


def split_sentences(text: str, *, colon: bool = False) -> list[str]:
    """The sentences of ``text`` as strings, end marks kept (see :func:`sentence_spans`)."""
    return [text[s.start : s.end] for s in sentence_spans(text, colon=colon)]


__all__ = ["COLONS", "SENTENCE_ENDS", "Span", "sentence_spans", "split_sentences"]
