"""General-Chinese word frequencies (jieba's dictionary), held in a few megabytes.

The reranker's ``domain`` feature compares how often the manuals use a word with how often
Chinese at large does, and jieba's dictionary (349k words with counts) is that background.
Python jieba's loaded dictionary holds every prefix of every word as a dict key, about 60 MB per
process; segmentation no longer needs it (zhtext cuts with jieba-rs), so the counts are read
from the same ``dict.txt`` into one sorted array of word hashes beside an array of counts.

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
from pathlib import Path

import numpy as np

_LOCK = threading.Lock()
_LOADED: Background | None = None


class Background:
    """Word counts of a jieba-format dictionary (``word count [tag]`` per line).

    Args:
        path: the dictionary file. A word listed twice keeps its last count, and the total
            sums every line, as jieba's own loader does.

    Raises:
        RuntimeError: the file is missing or a line's count is not a number (the message names
            the file, the line and what to do).
    """

    def __init__(self, path: Path) -> None:
        counts: dict[str, int] = {}
        total = lineno = 0
        try:
            with open(path, encoding="utf-8") as f:
                for line in f:
                    lineno += 1
                    parts = line.split(" ")
                    if len(parts) < 2:
                        continue
                    count = int(parts[1])
                    counts[parts[0]] = count
                    total += count
        except (OSError, ValueError) as e:
            where = f"{path}:{lineno}" if lineno else str(path)
            raise RuntimeError(f"{where}: jieba's dictionary cannot be read ({e}); reinstall jieba") from e
        keys = np.fromiter((_key(w) for w in counts), dtype=np.int64, count=len(counts))
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._counts = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))[order]
        self.total = total
        self.words = len(counts)

    def count(self, word: str) -> int:
        """How often the dictionary counts ``word`` (0 when it does not list it)."""
        key = _key(word)
        i = int(np.searchsorted(self._keys, key))
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
