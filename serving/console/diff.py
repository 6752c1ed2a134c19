"""Character-level diffs and highlighted spans of clause text, as segments a template renders.

Clauses are mostly one long line of Chinese with no spaces, so a line or word diff says nothing:
the diff is over characters (difflib's SequenceMatcher, junk heuristics off so frequent characters
like 的 are not ignored), and a replacement is shown as the deletion followed by the insertion.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Literal

Op = Literal["equal", "delete", "insert"]


@dataclass(frozen=True)
class Segment:
    """A run of text: unchanged, only in the old text, or only in the new one."""

    op: Op
    text: str


def char_diff(old: str, new: str) -> list[Segment]:
    """``old`` -> ``new`` as equal / delete / insert runs (their equal+delete text is ``old``)."""
    out: list[Segment] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(Segment("equal", old[i1:i2]))
            continue
        if i2 > i1:
            out.append(Segment("delete", old[i1:i2]))
        if j2 > j1:
            out.append(Segment("insert", new[j1:j2]))
    return out


@dataclass(frozen=True)
class Highlight:
    """Text split around a marked span; ``mark`` is empty when there is no valid span."""

    before: str
    mark: str
    after: str


def highlight(text: str, start: int | None, end: int | None) -> Highlight:
    """``text`` with ``text[start:end]`` marked; an absent or out-of-range span marks nothing."""
    if start is None or end is None or not 0 <= start < end <= len(text):
        return Highlight(text, "", "")
    return Highlight(text[:start], text[start:end], text[end:])


__all__ = ["Highlight", "Segment", "char_diff", "highlight"]
