"""How well each unit covers a query's terms, for every unit at once.

Coverage is the IDF-weighted share of a query's terms a unit contains, as a word of its tokens
or inside a longer word of its text (丢 in 丢失: a short question and a long clause are segmented
differently). The reranker reads it for each of ~50 candidates, twice (the ask's terms and the
body's), and a letter that names a standard has every clause of that standard scored by it.
Asked one clause and one term at a time in Python, that was the largest lexical cost of a long
letter. Here a term's presence over all units is one boolean row (its words from an inverted
index, its substrings from one scan of the joined texts: serving/retrieval/substrings.py), kept
in a bounded LRU cache, and a query's coverage of every unit is a few vector additions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import numpy as np

from serving.retrieval.substrings import SubstringScanner

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

    Request threads share one instance; the cache is guarded by a lock, and a row is computed
    outside it (two threads missing the same term both compute it, and the second is dropped).
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
        self._n = len(haystacks)
        self._scanner = SubstringScanner(haystacks)
        word_units: dict[str, list[int]] = {}
        for unit, words in enumerate(unit_terms):
            for word in words:
                word_units.setdefault(word, []).append(unit)
        self._word_units = {w: np.asarray(units, dtype=np.int64) for w, units in word_units.items()}
        self._max_terms = max(1, max_cached_cells // max(1, self._n))
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def presence(self, term: str) -> np.ndarray:
        """Which units hold ``term``: as one of their words, or inside their text."""
        with self._lock:
            row = self._rows.get(term)
            if row is not None:
                self._rows.move_to_end(term)
                return row
        row = np.zeros(self._n, dtype=bool)
        row[self._scanner.occurrences(term)[0]] = True
        # a word is not always a substring: numbered parts become one canonical token (第22条)
        row[self._word_units.get(term, [])] = True
        with self._lock:
            if term not in self._rows:
                self._rows[term] = row
                while len(self._rows) > self._max_terms:
                    self._rows.popitem(last=False)
        return row

    def units(self, weights: Mapping[str, float]) -> np.ndarray:
        """Each unit's coverage of ``weights`` (term -> IDF, ``Bm25Index.weights``), in [0, 1].

        Both sums run over the terms in their order, so a unit holding every term covers
        exactly 1.0, and ties rank as they did when coverage was summed clause by clause."""
        covered = np.zeros(self._n)
        total = 0.0
        for term, weight in weights.items():
            covered += np.where(self.presence(term), weight, 0.0)
            total += weight
        return covered / total if total else covered

    def __len__(self) -> int:
        """Terms cached now."""
        return len(self._rows)


__all__ = ["MAX_CACHED_CELLS", "TermCoverage"]
