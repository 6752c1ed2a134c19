"""BM25 over jieba tokens (bm25s); each unit's tokens also feed the coverage features (coverage.py).

Chinese has no spaces, so both sides are segmented by :meth:`zhtext.Tokenizer.tokens`: jieba's
search mode (``建筑工程`` also yields ``建筑`` and ``工程``), which lets a question's shorter words
meet a clause's longer ones, without the tokens that carry no content — punctuation, function
words and the words every question is phrased with (什么, 如何, 规定): they would otherwise let an
unrelated question "match" any clause. This module only sees the token lists.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import bm25s
from bm25s.selection import topk


def _doc_freq(unit_sets: Sequence[frozenset[str]]) -> dict[str, int]:
    df: dict[str, int] = {}
    for s in unit_sets:
        for tok in s:
            df[tok] = df.get(tok, 0) + 1
    return df


class Bm25Index:
    """A BM25 index over units (clauses and chunks) whose positions are the caller's unit ids.

    Args:
        unit_tokens: the token list of each unit, in unit order.
        k1: term-frequency saturation.
        b: length normalization (long guide clauses are split into chunks, so the default works).
    """

    def __init__(self, unit_tokens: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self._tokens = [list(t) for t in unit_tokens]
        self._unit_sets = [frozenset(t) for t in unit_tokens]
        self._n = len(unit_tokens)
        self._df = _doc_freq(self._unit_sets)
        self._idf: dict[str, float] = {}
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        if self._n:
            self._bm25.index([list(t) or [""] for t in unit_tokens], show_progress=False)

    def __len__(self) -> int:
        return self._n

    def unit_terms(self, unit: int) -> frozenset[str]:
        """The distinct tokens of one unit."""
        return self._unit_sets[unit]

    def unit_tokens(self, unit: int) -> list[str]:
        """The tokens of one unit, repeats kept."""
        return self._tokens[unit]

    def idf(self, token: str) -> float:
        """Smoothed IDF; a token the corpus never uses gets the highest value (it is informative)."""
        value = self._idf.get(token)
        if value is None:
            df = self._df.get(token, 0)
            value = self._idf[token] = math.log(1 + (self._n - df + 0.5) / (df + 0.5))
        return value

    def search(self, query_tokens: Sequence[str], n: int) -> list[tuple[int, float]]:
        """Units by descending BM25 score, positive scores only."""
        known = [t for t in dict.fromkeys(query_tokens) if t in self._df]
        if not known or not self._n:
            return []
        # get_scores and bm25s's own top-k, not retrieve(): the same ranking without retrieve's
        # batching and progress machinery, a third of this call's time on a short question
        scores, ids = topk(self._bm25.get_scores(known), min(n, self._n), backend="numpy", sorted=True)
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True) if s > 0]

    def weights(self, terms: Iterable[str]) -> dict[str, float]:
        """Distinct ``terms`` with their IDF: computed once per question, used for every candidate."""
        return {t: self.idf(t) for t in dict.fromkeys(terms)}

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write the bm25s matrices and the token lists (needed to recompute coverage)."""
        directory.mkdir(parents=True, exist_ok=True)
        if self._n:
            self._bm25.save(str(directory / "bm25s"), show_progress=False)
        with (directory / "tokens.json").open("w", encoding="utf-8") as fh:
            json.dump(self._tokens, fh, ensure_ascii=False)

    @classmethod
    def load(cls, directory: Path) -> Bm25Index:
        """Read what :meth:`save` wrote; matrices are loaded, not recomputed."""
        with (directory / "tokens.json").open(encoding="utf-8") as fh:
            unit_tokens: list[list[str]] = json.load(fh)
        index = cls.__new__(cls)
        index._tokens = unit_tokens
        index._unit_sets = [frozenset(t) for t in unit_tokens]
        index._n = len(unit_tokens)
        index._df = _doc_freq(index._unit_sets)
        index._idf = {}
        index._bm25 = (
            bm25s.BM25.load(str(directory / "bm25s"), show_progress=False) if index._n else bm25s.BM25()
        )
        return index
