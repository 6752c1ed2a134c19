"""Full-text ranking in process: BM25 of each key term as a phrase of the clause text.

Jieba's BM25 (bm25.py) only meets a clause where both sides cut the same word; a question's
合同履约成本 does not meet a clause that writes 合同履约成本的摊销 as one token, nor 履约 inside
履约义务. Lucene's ``cjk`` analyzer (Neo4j's full-text index) catches those because it matches
character bigrams in order, which is a substring match. This index does the same from the
retrieval snapshot: each term is counted as a substring of every unit's normalized text and
scored with BM25 (document frequency of the phrase, term frequency, length normalization by
characters, as bigram counts are). It replaced a Neo4j full-text query that cost ~20 ms of each
Ask's ~45 ms in a round trip; here a question costs well under a millisecond once its terms have
been seen, and the index holds nothing but the joined text.

Positions are the caller's unit ids (the order of ``texts``), like ``Bm25Index`` and ``QuoteIndex``.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from zhtext import fold

_SEPARATOR = "\x00"
"""Joins the units: no term contains it, so no match spans two units."""

_CACHE_TERMS = 20_000
"""Postings kept per index (a few hundred bytes each); the cache is emptied when full."""


class PhraseIndex:
    """Units ranked by BM25 over substring occurrences of the query terms.

    Args:
        texts: each unit's text after ``zhtext.fold`` (``RetrievalIndex.normalized``).
        k1: term-frequency saturation.
        b: length normalization.
    """

    def __init__(self, texts: Sequence[str], k1: float = 1.2, b: float = 0.75) -> None:
        self._n = len(texts)
        lengths = np.fromiter((len(t) for t in texts), dtype=np.float64, count=self._n)
        self._starts = np.concatenate([[0], np.cumsum(lengths + len(_SEPARATOR))[:-1]]).astype(np.int64)
        self._corpus = _SEPARATOR.join(texts)
        average = float(lengths.mean()) if self._n else 1.0
        self._k1 = k1
        self._norm = k1 * (1 - b + b * lengths / max(average, 1.0))
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """The units that contain ``term`` (normalized like the texts) and how often each does."""
        cached = self._postings.get(term)
        if cached is not None:
            return cached
        offsets = np.fromiter((m.start() for m in re.finditer(re.escape(term), self._corpus)), dtype=np.int64)
        units = np.searchsorted(self._starts, offsets, side="right") - 1
        found = np.unique(units, return_counts=True) if len(units) else (units, units)
        with self._lock:  # request threads share the index; the dict only ever grows or empties
            if len(self._postings) >= _CACHE_TERMS:
                self._postings.clear()
            self._postings[term] = found
        return found

    def search(self, terms: Iterable[str], n: int) -> list[tuple[int, float]]:
        """At most ``n`` units by descending score, positive scores only; each distinct term counts once."""
        if not self._n:
            return []
        scores = np.zeros(self._n)
        for term in dict.fromkeys(fold(t).strip() for t in terms):
            if not term or _SEPARATOR in term:
                continue
            units, tf = self.postings(term)
            if not len(units):
                continue
            df = len(units)
            idf = math.log(1 + (self._n - df + 0.5) / (df + 0.5))
            scores[units] += idf * tf * (self._k1 + 1) / (tf + self._norm[units])
        if n >= self._n:
            top = np.argsort(-scores, kind="stable")
        else:
            part = np.argpartition(-scores, n)[:n]
            top = part[np.argsort(-scores[part], kind="stable")]
        return [(int(u), float(scores[u])) for u in top if scores[u] > 0]


__all__ = ["PhraseIndex"]
