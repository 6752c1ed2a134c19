"""Word segmentation with jieba's algorithm and dictionary, one thread-safe tokenizer class for every caller.

The cuts come from jieba-rs (``rjieba``), the Rust port of jieba: the same prefix dictionary,
DAG and dynamic programme, compiled. On the 4,512 paragraphs of the 42 accounting standards and
the dev letters its search-mode cut (what BM25, coverage and the quote lookup index) and its
plain cut without HMM (the verifier's atoms) are token for token jieba's own, with or without
user words, at a twelfth of the time or less (``bench/bench_tokenize.py``); Python jieba was a
quarter of a long letter's retrieval. The HMM cut differs only inside ASCII runs with dots or
dashes (``bbs.esnai.com`` stays whole).

rjieba does not expose its dictionary's word counts, the general-Chinese background of
:meth:`Tokenizer.background_logprob`: :mod:`zhtext.background` reads them from jieba's own
``dict.txt``, in a few megabytes rather than Python jieba's loaded dictionary (~60 MB).

A :class:`Tokenizer` owns its segmenter, ready when the constructor returns; afterwards it is
only read (rjieba's cuts hold the GIL), which is safe from any number of threads. A tokenizer
without user words shares one process-wide segmenter; one with user words builds its own (about
0.2 s: jieba-rs loads its dictionary afresh), so its words never leak into another's cuts.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable

import rjieba

from zhtext.background import background
from zhtext.numerals import to_chinese, to_int
from zhtext.patterns import CJK, NUMBERED_PART
from zhtext.stopwords import STOPWORDS

_LOCK = threading.Lock()
_SHARED: rjieba.Jieba | None = None
_DEFAULT: Tokenizer | None = None
_WORD_CHAR = re.compile(rf"[\w{CJK}]")
_SINGLE_CJK = re.compile(rf"[{CJK}]")


def _shared_segmenter() -> rjieba.Jieba:
    """The segmenter of every tokenizer without user words (the caller holds ``_LOCK``)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = rjieba.Jieba()
    return _SHARED


def canonical_number(numeral: str, unit: str) -> str:
    """One spelling per numbered part: 第22条 and 第二十二条 -> 第二十二条; 第十四号 -> 第14号.

    A numeral that does not parse (第十十条) is kept as written.
    """
    try:
        value = to_int(numeral)
    except ValueError:
        return f"第{numeral}{unit}"
    return f"第{value}号" if unit == "号" else f"第{to_chinese(value)}{unit}"


class Tokenizer:
    """jieba segmentation that is safe to share between threads, with optional user words.

    Args:
        user_words: extra dictionary words kept whole by both cuts (the graph's defined terms,
            so that 计量周期 is one token beside 计量 and 周期). Blank and one-character words are
            ignored; order and duplicates do not matter.
    """

    def __init__(self, user_words: Iterable[str] = ()) -> None:
        words = sorted({w.strip() for w in user_words if len(w.strip()) >= 2})
        background()  # loaded now, not inside the first request that ranks
        if words:
            seg = rjieba.Jieba()
            for word in words:
                seg.add_word(word, None, None)  # frequency suggested by jieba: the word survives its own cut
        else:
            with _LOCK:
                seg = _shared_segmenter()
        self._seg = seg
        self._user_words = tuple(words)

    @property
    def user_words(self) -> tuple[str, ...]:
        """The user words in effect, sorted (what an index persists to rebuild this tokenizer)."""
        return self._user_words

    def background_logprob(self, word: str) -> float:
        """log P(word) in general Chinese, from jieba's own dictionary frequencies (add-one).

        The manuals' frequencies measured against this say which words are the manuals'
        language (计入, 摊销, 合同履约成本) and which are everyday or other fields' (试用期, 退税率).
        User words are not in jieba's dictionary, so the base dictionary answers.
        """
        return background().logprob(word)

    def words(self, text: str, *, hmm: bool = True) -> list[str]:
        """jieba's accurate-mode cut of ``text``, every piece kept (punctuation and spaces too).

        Args:
            text: the text to segment.
            hmm: let jieba's HMM join characters its dictionary does not know (jieba's default).
        """
        return [w for w in self._seg.cut(text, hmm) if w]

    def tokens(self, text: str) -> list[str]:
        """Search-mode content tokens of ``text`` in order (repeats kept: BM25 counts them).

        The text is NFKC-normalized and lower-cased; stop words, punctuation and lone non-CJK
        characters are dropped. Numbered parts (第22条, 第二十二条, 第十四号) become one canonical
        token each, so both numeral styles meet and jieba does not shred them into 第二 / 二十 / 十二.
        Search mode adds a long word's dictionary sub-words (建筑工程 -> 建筑, 工程, 建筑工程), so
        a question's shorter words meet a clause's longer ones.
        """
        norm = fold(text)
        out: list[str] = []
        parts = NUMBERED_PART.split(norm)
        for i, part in enumerate(parts):
            if i % 3 == 1:
                out.append(canonical_number(part, parts[i + 1]))
            elif i % 3 == 0:
                out.extend(self._search_words(part))
        return out

    def _search_words(self, text: str) -> list[str]:
        out: list[str] = []
        for tok in self._seg.cut_for_search(text, False):
            tok = tok.strip()
            if not tok or tok in STOPWORDS or not _WORD_CHAR.search(tok):
                continue
            if len(tok) == 1 and not (_SINGLE_CJK.match(tok) or tok.isdigit()):
                continue
            out.append(tok)
        return out


def fold(text: str) -> str:
    """NFKC (full-width to half-width) and lower case: the form in which questions and clause
    texts are compared, wherever they are (tokens, substring matches, coverage)."""
    return unicodedata.normalize("NFKC", text).lower()


def default_tokenizer() -> Tokenizer:
    """The process-wide tokenizer without user words, built on first use (never at import)."""
    global _DEFAULT
    if _DEFAULT is None:
        tokenizer = Tokenizer()
        with _LOCK:
            if _DEFAULT is None:
                _DEFAULT = tokenizer
    return _DEFAULT


__all__ = ["Tokenizer", "canonical_number", "default_tokenizer"]
