"""The one citation marker format shared by prompts, answer backends, the verifier and datasets.

A citation is written ``[[CLAUSE_ID]]`` right after the sentence it supports, for example
``进度款应在十四日内审核完毕[[YNJS-GL/第十二条]]。`` Clause ids contain ``/`` and CJK, never ``[`` or
``]`` or whitespace, so the marker is unambiguous. Parsing is strict: anything that looks like an
attempt at a marker but is not well formed is reported as malformed instead of being guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MARKER_RE = re.compile(r"\[\[([^\[\]\s/]+/[^\[\]\s]+)\]\]")
# Near-misses a model tends to produce: single brackets around an id, 【】, empty or spaced markers.
_SUSPECT_RE = re.compile(
    r"\[\[[^\]]*\]\]|(?<!\[)\[[^\[\]\s/]+/[^\[\]\s]+\](?!\])|【[^】]*/[^】]*】|\[\[|\]\]"
)


def format_marker(clause_id: str) -> str:
    """The marker for one clause id."""
    return f"[[{clause_id}]]"


@dataclass(frozen=True)
class Marker:
    clause_id: str
    start: int
    end: int


@dataclass
class ParsedCitations:
    """Markers in order of appearance, plus malformed near-misses (kept as raw text)."""

    markers: list[Marker] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)

    @property
    def clause_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for m in self.markers:
            seen.setdefault(m.clause_id, None)
        return list(seen)


def parse_citations(text: str) -> ParsedCitations:
    """Find well-formed markers and report malformed ones."""
    parsed = ParsedCitations()
    good_spans = []
    for m in MARKER_RE.finditer(text):
        parsed.markers.append(Marker(m.group(1), m.start(), m.end()))
        good_spans.append((m.start(), m.end()))
    for s in _SUSPECT_RE.finditer(text):
        if not any(a <= s.start() and s.end() <= b for a, b in good_spans):
            parsed.malformed.append(s.group(0))
    return parsed


def strip_markers(text: str) -> str:
    """The answer as a reader sees it without markers (for similarity and length measures)."""
    return MARKER_RE.sub("", text)
