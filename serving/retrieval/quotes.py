"""Quote lookup: find the clause a letter quotes back, verbatim or nearly so.

A letter that quotes "出租人发生的与经营租赁有关的初始直接费用应当资本化…" has told us its clause:
the quoted words occur, in that order, in one clause of the graph. Character n-grams make that a
cheap and robust test — a dropped word, a full-width digit or a changed punctuation mark costs a
few n-grams, not the match — and an inverted index answers it in well under a millisecond.
"""

from __future__ import annotations

import heapq
import re
from collections import Counter
from collections.abc import Sequence

from zhtext import fold

N = 4
"""Characters per n-gram: long enough to be specific in Chinese legal text, short enough to survive edits."""

_DROP = re.compile(r"[^\w\u3400-\u9fff]+")


def _normal(text: str) -> str:
    return _DROP.sub("", fold(text))


def ngrams(text: str, n: int = N) -> set[str]:
    """The distinct character n-grams of ``text`` after NFKC, lower case and dropping punctuation."""
    norm = _normal(text)
    return {norm[i : i + n] for i in range(len(norm) - n + 1)}


class QuoteIndex:
    """An inverted index from character n-grams to the units that contain them.

    Args:
        texts: the text of each unit, in unit order (positions are the caller's unit ids).
    """

    def __init__(self, texts: Sequence[str]) -> None:
        postings: dict[str, list[int]] = {}
        for unit, text in enumerate(texts):
            for gram in ngrams(text):
                postings.setdefault(gram, []).append(unit)
        self._postings = postings

    def lookup(self, quote: str, n: int = 10) -> list[tuple[int, float]]:
        """Units by the share of the quote's n-grams they contain (best first, share > 0).

        A share near 1.0 means the unit contains the quote almost verbatim; a common phrase
        shared by many clauses scores low because the rest of the quote is missing. Equal shares
        rank by unit position: the n-grams are a set, whose order changes with each process's
        string hashing, and a tie broken by it gave two server processes different citations.
        """
        grams = ngrams(quote)
        if not grams:
            return []
        counts: Counter[int] = Counter()
        for gram in grams:
            counts.update(self._postings.get(gram, ()))
        total = len(grams)
        best = heapq.nsmallest(n, counts.items(), key=lambda p: (-p[1], p[0]))
        return [(unit, hits / total) for unit, hits in best]


__all__ = ["N", "QuoteIndex", "ngrams"]
