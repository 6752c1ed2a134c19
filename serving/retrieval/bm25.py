"""BM25 over jieba tokens (bm25s), with the query-term coverage that decides "no evidence".

Chinese has no spaces, so text is segmented with jieba in search mode (``建筑工程`` also yields
``建筑`` and ``工程``), which lets a question's shorter words meet a clause's longer ones. Tokens
that carry no content — punctuation, numbers' decoration, function words and the words every
question is phrased with (什么, 如何, 规定) — are dropped from both sides: they would otherwise
let an unrelated question "match" any clause.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

import bm25s
import jieba

from ingest.numerals import CN_DIGITS, to_chinese, to_int

_STOPWORD_TEXT = """
    的 了 是 在 和 与 或 及 以及 等 对 于 对于 其 该 本 之 为 被 把 将 由 从 向 按 按照 依照 根据 并 且 而
    而且 并且 也 都 就 还 又 即 如 若 如果 的话 则 但 但是 可 可以 能 能够 会 应 应当 应该 需 需要 须 必须
    要 得 所 这 那 这个 那个 这些 那些 这种 那种 这样 那样 此 各 每 个 一 一个 有 没有 无 不 没 非 吗 呢 吧
    啊 么 呀 什么 什么样 哪些 哪个 哪 哪几 哪几种 几种 几个 几年 几天 哪天 怎么 怎样 怎么样 怎么办 如何 是否
    多少 多久 多长 多长时间 几 谁 何时 何 为什么 干什么 请问 请 问 规定 规定了 有关 相关 关于 方面 情况 时候
    我们 我 你 他 她 它 他们 公司 咱们 一下 知道 想 问题 具体 一般 通常 主要 哪里 下 上 中 内 后 前 时 里
    里面 到底 究竟 有没有 是不是 能不能 要不要 可不可以 会不会 算是 算 讲 说 怎么说 定义 含义 意思 概念 用来
    拿来 拿到 出去 好几 同一个 一份 内容 指 指的是
    """
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
"""Function and question words; content words shared by questions and clauses are kept."""

_KEEP = re.compile(r"[\w\u4e00-\u9fff]")


_NUMBERED = re.compile(rf"第\s*([0-9{CN_DIGITS}]+)\s*(条|章|节|款|项|号)")


def _canonical_number(numeral: str, unit: str) -> str:
    try:
        value = to_int(numeral)
    except ValueError:
        return f"第{numeral}{unit}"
    return f"第{value}号" if unit == "号" else f"第{to_chinese(value)}{unit}"


def _doc_freq(unit_sets: Sequence[frozenset[str]]) -> dict[str, int]:
    df: dict[str, int] = {}
    for s in unit_sets:
        for tok in s:
            df[tok] = df.get(tok, 0) + 1
    return df


class Tokenizer:
    """jieba search-mode segmentation with stop words removed; one instance per index.

    jieba's default tokenizer is a process-wide object that initializes lazily and is not safe to
    initialize from two threads at once, so each Tokenizer owns an initialized ``jieba.Tokenizer``.
    """

    def __init__(self) -> None:
        jieba.setLogLevel(logging.WARNING)
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()

    def tokens(self, text: str) -> list[str]:
        """Content tokens of ``text`` in order (repeats kept: BM25 counts them).

        Numbered parts (第22条, 第二十二条, 第十四号) become one canonical token each, so both
        numeral styles meet and jieba does not shred them into 第二 / 二十 / 十二.
        """
        norm = unicodedata.normalize("NFKC", text).lower()
        out: list[str] = []
        parts = _NUMBERED.split(norm)
        for i, part in enumerate(parts):
            if i % 3 == 1:
                out.append(_canonical_number(part, parts[i + 1]))
            elif i % 3 == 0:
                out.extend(self._words(part))
        return out

    def _words(self, text: str) -> list[str]:
        out: list[str] = []
        for tok in self._jieba.cut_for_search(text, HMM=False):
            tok = tok.strip()
            if not tok or tok in STOPWORDS or not _KEEP.search(tok):
                continue
            if len(tok) == 1 and not ("\u4e00" <= tok <= "\u9fff" or tok.isdigit()):
                continue
            out.append(tok)
        return out


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
        self._vocab_blob: str | None = None
        self._bm25 = bm25s.BM25(k1=k1, b=b)
        if self._n:
            self._bm25.index([list(t) or [""] for t in unit_tokens], show_progress=False)

    def __len__(self) -> int:
        return self._n

    def idf(self, token: str) -> float:
        """Smoothed IDF; a token the corpus never uses gets the highest value (it is informative)."""
        df = self._df.get(token, 0)
        return math.log(1 + (self._n - df + 0.5) / (df + 0.5))

    def search(self, query_tokens: Sequence[str], n: int) -> list[tuple[int, float]]:
        """Units by descending BM25 score, positive scores only."""
        known = [t for t in dict.fromkeys(query_tokens) if t in self._df]
        if not known or not self._n:
            return []
        ids, scores = self._bm25.retrieve([known], k=min(n, self._n), show_progress=False, n_threads=1)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]

    def support(self, query_tokens: Iterable[str], unit: int, text: str | None = None) -> tuple[float, int]:
        """How well ``unit`` covers the query: the IDF-weighted share of the query's distinct
        tokens it contains, and how many distinct tokens that is.

        With ``text`` (the unit's text) a token also counts when it occurs inside a longer word
        (丢 in 丢失): segmentation differs between a short question and a long clause.
        """
        terms = set(query_tokens)
        if not terms:
            return 0.0, 0
        words = self._unit_sets[unit]
        haystack = unicodedata.normalize("NFKC", text).lower() if text else ""
        present = [t for t in terms if t in words or (haystack and t in haystack)]
        total = sum(self.idf(t) for t in terms)
        share = sum(self.idf(t) for t in present) / total if total else 0.0
        return share, len(present)

    def corpus_share(self, query_tokens: Iterable[str]) -> float:
        """The IDF-weighted share of the query's distinct tokens that occur anywhere in the corpus
        (as a word, or inside a longer word). Questions about what the manuals never mention
        (年终奖, 个人所得税) score low here whatever the ranking."""
        terms = set(query_tokens)
        if not terms:
            return 0.0
        if self._vocab_blob is None:
            self._vocab_blob = "\n".join(self._df)
        total = sum(self.idf(t) for t in terms)
        known = sum(self.idf(t) for t in terms if t in self._df or t in self._vocab_blob)
        return known / total if total else 0.0

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
        index._vocab_blob = None
        index._bm25 = (
            bm25s.BM25.load(str(directory / "bm25s"), show_progress=False) if index._n else bm25s.BM25()
        )
        return index
