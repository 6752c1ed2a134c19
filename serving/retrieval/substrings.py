"""Which of many texts contain a term as a substring: one regex scan of their joined text.

Chinese questions and clauses are segmented differently (履约 inside 履约义务), so retrieval asks
again and again whether a term occurs anywhere in a clause's folded text: the full-text ranking
(phrases.py) for its postings, the coverage features (coverage.py) for every unit. A scan of the
joined texts in C, mapped back to texts with ``searchsorted``, answers that for all texts at once
in ~0.1 ms over the 42 standards, where a Python ``in`` per text took several times as long.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

SEPARATOR = "\x00"
"""Joins the texts: no term contains it, so no match spans two texts."""


class SubstringScanner:
    """Substring occurrences of a term in each of ``texts`` (already folded by the caller)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._n = len(texts)
        self.lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=self._n)
        """Each text's length in characters (the full-text ranking's length normalization)."""
        self._starts = np.concatenate([[0], np.cumsum(self.lengths + len(SEPARATOR))[:-1]]).astype(np.int64)
        self._corpus = SEPARATOR.join(texts)

    def occurrences(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Positions of the texts that contain ``term`` (ascending), and how often each does
        (non-overlapping matches). A term holding ``SEPARATOR`` occurs nowhere."""
        if not term or SEPARATOR in term:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        offsets = np.fromiter((m.start() for m in re.finditer(re.escape(term), self._corpus)), dtype=np.int64)
        positions = np.searchsorted(self._starts, offsets, side="right") - 1
        if not len(positions):
            return positions, positions
        found, counts = np.unique(positions, return_counts=True)
        return found, counts


__all__ = ["SEPARATOR", "SubstringScanner"]
