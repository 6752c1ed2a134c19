"""General-Chinese word frequencies (jieba's dictionary), held in about 14 MB.

The reranker's ``domain`` feature compares how often the manuals use a word with how often
Chinese at large does, and jieba's dictionary (349k words with counts) is that background.
Python jieba's loaded dictionary holds every prefix of every word as a dict key, about 60 MB per
process; segmentation no longer needs it (zhtext cuts with jieba-rs), so the counts are read
from the same ``dict.txt`` into one sorted array of word hashes beside an array of counts
(5.6 MB of arrays; a process grows by ~14 MB loading them, ``bench/bench_tokenize.py``).

Keys are 64-bit BLAKE2b digests of each word's UTF-8 bytes: the same in every process (a table
that travelled to another process would still answer right), and unlike Python's ``hash`` of a
``str``, which hashes the string's raw buffer, ``BP`` (two one-byte characters) and ``偂`` (one
two-byte character, 0x5042) do not collide; the dictionary holds such pairs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

_LOCK = threading.Lock()
_LOADED: Background | None = None


class Background:
    """Word counts of a jieba-format dictionary (``word count [tag]`` per line).

    Args:
        path: the dictionary file. A word listed twice keeps its last count, and the total
            sums every line, as jieba's own loader does.

    Raises:
        RuntimeError: the file cannot be read, a line has no count or a count that is not a
            number, or no word has a count (the message names the file and the line).
    """

    def __init__(self, path: Path) -> None:
        import numpy as np  # not with zhtext's import: only a ranking process needs the table

        lineno = 0

        def column(read: Callable[[list[str]], int]) -> Iterator[int]:
            # one pass over the file per column, through np.fromiter: no list of 349k Python ints
            # (whose memory Python keeps after freeing them) is ever built
            nonlocal lineno
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):  # noqa: B007 - read by the error message
                    parts = line.split()
                    if parts:
                        yield read(parts)  # a line without a count fails, as in jieba

        try:
            keys = np.fromiter(column(lambda parts: _key(parts[0])), dtype=np.int64)
            counts = np.fromiter(column(lambda parts: int(parts[1])), dtype=np.int64)
        except (OSError, UnicodeDecodeError, ValueError, IndexError) as e:
            where = f"{path}:{lineno}" if lineno else str(path)
            raise RuntimeError(f"{where}: not a jieba dictionary ({e!r})") from e
        total = int(counts.sum())
        if total <= 0:
            raise RuntimeError(f"{path}: not a jieba dictionary (no word has a count)")
        # the last count of a word listed twice wins, as in jieba: first occurrence when reversed
        unique, first = np.unique(keys[::-1], return_index=True)
        self._np = np
        self._keys = unique
        self._counts = counts[::-1][first]
        self.total = total
        self.words = len(unique)

    def count(self, word: str) -> int:
        """How often the dictionary counts ``word`` (0 when it does not list it)."""
        key = _key(word)
        i = int(self._np.searchsorted(self._keys, key))
        return int(self._counts[i]) if i < len(self._keys) and self._keys[i] == key else 0

    def logprob(self, word: str) -> float:
        """log P(word) in general Chinese, add-one smoothed."""
        return math.log((self.count(word) + 1) / self.total)


def _key(word: str) -> int:
    digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _dictionary() -> Path:
    """jieba's ``dict.txt``, found without importing jieba (its import sets up a tokenizer)."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "jieba is not installed, and its dict.txt is the background counts; pip install -e ."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "dict.txt"


def background() -> Background:
    """jieba's own dictionary, loaded once per process (under a second) on first use."""
    global _LOADED
    loaded = _LOADED
    if loaded is None:
        with _LOCK:
            if _LOADED is None:
                _LOADED = Background(_dictionary())
            loaded = _LOADED
    return loaded


__all__ = ["Background", "background"]
