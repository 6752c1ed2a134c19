"""Full-text ranking in process: each key term scored as a phrase of the clause text, as Lucene would.

Jieba's BM25 (bm25.py) only meets a clause where both sides cut the same word; a question's
合同履约成本 does not meet a clause that writes 合同履约成本的摊销 as one token, nor 履约 inside
履约义务. Lucene's ``cjk`` analyzer (Neo4j's full-text index) catches those: it indexes character
bigrams, and a quoted term becomes a phrase of its bigrams, which in Chinese text is a substring
match. This index scores the same way from the retrieval snapshot:

- a term occurs where it is a substring of the clause's folded text (``zhtext.fold``);
- its weight is the sum of the IDFs of its bigrams (Lucene's phrase weight: a long, specific term
  outweighs a short common one), a single character its own IDF;
- BM25 saturates its frequency and normalizes by the clause's length in characters (the number of
  bigrams Lucene counts, within one).

It replaced a Neo4j full-text query that cost ~20 ms of each Ask's ~45 ms of retrieval in a round
trip (``bench/bench_retrieval.py``), with the same hits at 1 and 5 on the 76 questions written
here. It indexes whole clauses, as that index did (chunks of a long clause would rank its parts
above shorter clauses that answer better), though as the units' text: the document title and
article number come first, so a word of the title matches each of its clauses. A term not seen
before costs a scan of the joined text for it and for each of its bigrams (~0.1 ms each for the 42
standards; serving/retrieval/substrings.py); its postings are then cached per snapshot, up to
``_CACHE_TERMS`` of them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from serving.retrieval.substrings import SubstringScanner
from zhtext import fold

_CACHE_TERMS = 20_000
"""Postings kept per index (16 bytes for each clause a term occurs in); emptied when full."""


class PhraseIndex:
    """Texts ranked by BM25 over substring occurrences of the query terms.

    Args:
        texts: each text after ``zhtext.fold`` (``RetrievalIndex.normalized`` of whole clauses).
        ids: the caller's id of each text (a unit position); default: the position in ``texts``.
        k1: term-frequency saturation.
        b: length normalization.
    """

    def __init__(
        self, texts: Sequence[str], ids: Sequence[int] | None = None, k1: float = 1.2, b: float = 0.75
    ) -> None:
        self._n = len(texts)
        self._ids = np.asarray(ids if ids is not None else range(self._n), dtype=np.int64)
        if len(self._ids) != self._n:
            raise ValueError(f"{self._n} texts but {len(self._ids)} ids")
        self._scanner = SubstringScanner(texts)
        lengths = self._scanner.lengths.astype(np.float64)
        average = float(lengths.mean()) if self._n else 1.0
        self._k1 = k1
        self._norm = k1 * (1 - b + b * lengths / max(average, 1.0))
        self._postings: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._n

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        """Positions (in ``texts``) of the texts that contain ``term``, and how often each does."""
        cached = self._postings.get(term)
        if cached is not None:
            return cached
        found = self._scanner.occurrences(term)
        with self._lock:  # request threads share the index; the dict only ever grows or empties
            if len(self._postings) >= _CACHE_TERMS:
                self._postings.clear()
            self._postings[term] = found
        return found

    def weight(self, term: str) -> float:
        """The term's IDF as a phrase: the sum of its bigrams' IDFs (a single character: its own)."""
        grams = [term[i : i + 2] for i in range(len(term) - 1)] or [term]
        return sum(self._idf(len(self.postings(g)[0])) for g in grams)

    def _idf(self, df: int) -> float:
        return math.log(1 + (self._n - df + 0.5) / (df + 0.5))

    def search(self, terms: Iterable[str], n: int) -> list[tuple[int, float]]:
        """At most ``n`` (id, score) pairs by descending score, positive scores only; each distinct
        term counts once."""
        if not self._n:
            return []
        scores = np.zeros(self._n)
        for term in dict.fromkeys(fold(t).strip() for t in terms):
            found, tf = self.postings(term)
            if len(found):
                scores[found] += self.weight(term) * tf * (self._k1 + 1) / (tf + self._norm[found])
        if n >= self._n:
            top = np.argsort(-scores, kind="stable")
        else:
            part = np.argpartition(-scores, n)[:n]
            top = part[np.argsort(-scores[part], kind="stable")]
        return [(int(self._ids[p]), float(scores[p])) for p in top if scores[p] > 0]


__all__ = ["PhraseIndex"]
