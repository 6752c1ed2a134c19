"""Word segmentation with jieba's algorithm and dictionary, one thread-safe tokenizer class for every caller.

The cuts come from jieba-rs (``rjieba``), the Rust port of jieba: the same prefix dictionary,
DAG and dynamic programme, compiled. On the 4,512 paragraphs of the 42 accounting standards and
the dev letters its search-mode cut (what BM25, coverage and the quote lookup index) and its
plain cut without HMM (the verifier's atoms) are token for token jieba's own, with or without
user words, at a twelfth of the time or less (``bench/bench_tokenize.py``); Python jieba was a
quarter of a long letter's retrieval. The HMM cut (:meth:`Tokenizer.words`' default: token F1,
ROUGE-L, the extractive answer's sentence scores, the extractor's words) differs inside ASCII
runs joined by dots, dashes or underscores, which stay whole (``www.mof.gov.cn``,
``2023-01-01``, ``e-mail``) where Python jieba cut them apart: metrics of answers holding such
runs are not exactly comparable with figures measured before the switch.

rjieba does not expose its dictionary's word counts, the general-Chinese background of
:meth:`Tokenizer.background_logprob`: :mod:`zhtext.background` reads them from jieba's own
``dict.txt``, in a few megabytes rather than Python jieba's loaded dictionary (~60 MB).

A :class:`Tokenizer` owns its segmenter, ready when the constructor returns; afterwards it is
only read (rjieba's cuts release the GIL and read shared state only; words are added before the
constructor returns), which is safe from any number of threads. A tokenizer without user words
uses rjieba's own default segmenter, which importing rjieba builds (about 35 MB, so rjieba is
imported on first use, never with zhtext); one with user words builds its own (about 0.2 s and
30 MB), so its words never leak into another's cuts. rjieba's module-level ``add_word`` and
``clear`` change that default segmenter, and so every tokenizer without user words (BM25's
questions, the verifier): nothing may call them; zhtext adds words to segmenters of its own.

A lone surrogate (``\udc80``, as a JSON escape can leave in a model's answer) cannot be encoded
for the Rust side: it becomes a token of its own between the cuts of the text around it, as
Python jieba kept it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from zhtext.background import background
from zhtext.numerals import to_chinese, to_int
from zhtext.patterns import CJK, NUMBERED_PART
from zhtext.stopwords import STOPWORDS

if TYPE_CHECKING:
    import rjieba

_LOCK = threading.Lock()
_DEFAULT: Tokenizer | None = None
_OWN_DEFAULT: rjieba.Jieba | None = None
_WORD_CHAR = re.compile(rf"[\w{CJK}]")
_SINGLE_CJK = re.compile(rf"[{CJK}]")
_SURROGATE = re.compile("([\ud800-\udfff])")


def _segmenter(words: list[str]) -> rjieba.Jieba:
    """rjieba's default segmenter when there are no ``words``, else a new one holding them."""
    import rjieba  # its import builds the default segmenter: not before a tokenizer is wanted

    if not words:  # rjieba's own (one per process; a copy would cost 35 MB more), if a release keeps it
        shared = getattr(rjieba, "_DEFAULT_JIEBA", None) or getattr(rjieba.cut, "__self__", None)
        return shared if isinstance(shared, rjieba.Jieba) else _fallback_default()
    seg = rjieba.Jieba()
    for word in words:
        seg.add_word(word, None, None)  # frequency suggested by jieba: the word survives its own cut
    return seg


def _fallback_default() -> rjieba.Jieba:
    """A process-wide segmenter of our own, for an rjieba release without ``_DEFAULT_JIEBA``."""
    global _OWN_DEFAULT
    with _LOCK:
        if _OWN_DEFAULT is None:
            import rjieba

            _OWN_DEFAULT = rjieba.Jieba()
        return _OWN_DEFAULT


def _cut(cut: Callable[[str, bool], list[str]], text: str, hmm: bool) -> list[str]:
    """``cut(text, hmm)``, with each lone surrogate a token of its own between the cuts around it."""
    try:
        return cut(text, hmm)
    except UnicodeEncodeError:
        out: list[str] = []
        for i, piece in enumerate(_SURROGATE.split(text)):
            if i % 2:
                out.append(piece)
            elif piece:
                out.extend(cut(piece, hmm))
        return out


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
            so that 计量周期 is one token beside 计量 and 周期). Blank and one-character words, and
            words holding a lone surrogate (jieba-rs cannot take them), are ignored; order and
            duplicates do not matter.
    """

    def __init__(self, user_words: Iterable[str] = ()) -> None:
        words = sorted({w.strip() for w in user_words if len(w.strip()) >= 2 and not _SURROGATE.search(w)})
        self._seg = _segmenter(words)  # the import system builds rjieba's default once, whichever thread asks
        self._user_words = tuple(words)

    @property
    def user_words(self) -> tuple[str, ...]:
        """The user words in effect, sorted (what an index persists to rebuild this tokenizer)."""
        return self._user_words

    def background_logprob(self, word: str) -> float:
        """log P(word) in general Chinese, from jieba's own dictionary frequencies (add-one).

        The manuals' frequencies measured against this say which words are the manuals'
        language (计入, 摊销, 合同履约成本) and which are everyday or other fields' (试用期, 退税率).
        User words are not in jieba's dictionary, so the base dictionary answers. The counts
        load on first use (under a second; the retrieval index loads them when it is built).
        """
        return background().logprob(word)

    def words(self, text: str, *, hmm: bool = True) -> list[str]:
        """jieba's accurate-mode cut of ``text``, every piece kept (punctuation and spaces too).

        Args:
            text: the text to segment.
            hmm: let jieba's HMM join characters its dictionary does not know (jieba's default).
        """
        return [w for w in _cut(self._seg.cut, text, hmm) if w]

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
        for tok in _cut(self._seg.cut_for_search, text, False):
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
