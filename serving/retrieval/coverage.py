"""How well each unit covers a query's terms, for every unit at once.

Coverage is the IDF-weighted share of a query's terms a unit contains, as a word of its tokens
or inside a longer word of its text (丢 in 丢失: a short question and a long clause are segmented
differently). The reranker reads it for each of ~50 candidates, twice (the ask's terms and the
body's), and a letter that names a standard has every clause of that standard scored by it.
Asked one clause and one term at a time in Python, that was the largest lexical cost of a long
letter; here each term's presence over all units is a boolean row, computed once and cached, and
a query's coverage of every unit is a few vector additions.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import numpy as np

MAX_CACHED_CELLS = 8_000_000
"""Bound of the term cache, in unit-presence booleans (bytes): 8 MB, ~5,600 terms over the 42
standards' 1,421 units. A served index meets the same few thousand terms again and again; the
bound keeps a long-running server's memory flat when it meets new ones."""


class TermCoverage:
    """Unit coverage of weighted query terms, over one snapshot's units.

    Args:
        unit_terms: each unit's distinct tokens, in unit order.
        haystacks: each unit's normalized text (``zhtext.fold``), in unit order.
        max_cached_cells: the term cache's bound (see ``MAX_CACHED_CELLS``).

    Request threads share one instance: a cache miss computes its row without a lock, and
    only the insertion is guarded, so two threads missing the same term both compute it.
    """

    def __init__(
        self,
        unit_terms: Sequence[frozenset[str]],
        haystacks: Sequence[str],
        *,
        max_cached_cells: int = MAX_CACHED_CELLS,
    ) -> None:
        if len(unit_terms) != len(haystacks):
            raise ValueError(f"{len(unit_terms)} units' terms but {len(haystacks)} texts")
        self._terms = list(unit_terms)
        self._haystacks = list(haystacks)
        self._n = len(self._terms)
        self._max_terms = max(1, max_cached_cells // max(1, self._n))
        self._rows: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def presence(self, term: str) -> np.ndarray:
        """Which units hold ``term`` (a word of the unit, or inside one of its words)."""
        row = self._rows.get(term)
        if row is None:
            row = np.fromiter(
                (
                    term in words or term in text
                    for words, text in zip(self._terms, self._haystacks, strict=True)
                ),
                dtype=bool,
                count=self._n,
            )
            with self._lock:
                if len(self._rows) >= self._max_terms:
                    self._rows.pop(next(iter(self._rows)))  # the oldest: insertion order
                self._rows[term] = row
        return row

    def units(self, weights: Mapping[str, float]) -> np.ndarray:
        """Each unit's coverage of ``weights`` (term -> IDF, ``Bm25Index.weights``), in [0, 1]."""
        total = sum(weights.values())
        if not weights or not total:
            return np.zeros(self._n)
        covered = np.zeros(self._n)
        for term, weight in weights.items():  # summed in the terms' order: ties rank as they always did
            covered += np.where(self.presence(term), weight, 0.0)
        return covered / total

    def __len__(self) -> int:
        """Terms cached now."""
        return len(self._rows)


__all__ = ["MAX_CACHED_CELLS", "TermCoverage"]
