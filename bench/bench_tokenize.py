"""Segmentation cost: zhtext's tokenizer (jieba-rs) beside Python jieba, same texts, same process.

Texts: every non-blank line of the 47 Markdown files of ../shared/corpus/cas-all (the 42
accounting standards and more: what an index build tokenizes) and the real letters of
../shared/eval/dev/citation_dev.jsonl (what an Ask tokenizes), NFKC-folded and lower-cased as
:meth:`zhtext.Tokenizer.tokens` folds them. For each cut it prints the milliseconds per 1,000
characters of both segmenters, the speed-up, and how many texts the two cut differently:

- ``search``: search mode without HMM (BM25, coverage and the quote lookup index these tokens);
- ``plain``: accurate mode without HMM (the verifier's atoms);
- ``plain+hmm``: accurate mode with HMM (token F1, the extractive answer's sentence scores);

each once without user words and once with ``--user-words`` words cut from the texts (as an
index adds the graph's defined terms). Then ``Tokenizer.tokens`` as retrieval calls it (numbered
parts, stop words), per letter. Last, memory: the resident megabytes a fresh interpreter grows by,
after both libraries are imported (rjieba is imported on first use, so its default segmenter is
counted), when it builds a serving process's two tokenizers (the
shared one, and the index's with user words) and their background counts, zhtext's way and
Python jieba's (its dictionary loaded, then copied for the user words).

    .venv/bin/python bench/bench_tokenize.py [--json] [--repeat 3] [--user-words 400]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from devsets import shared_dir  # noqa: E402 - after the path set-up


def load_texts() -> tuple[list[str], list[str]] | None:
    """(corpus lines, dev letters), folded; None when ../shared is absent (as on a user's clone)."""
    from zhtext import fold

    corpus = shared_dir() / "corpus" / "cas-all"
    letters = shared_dir() / "eval" / "dev" / "citation_dev.jsonl"
    if not corpus.is_dir() or not letters.is_file():
        return None
    lines = [
        fold(line)
        for path in sorted(corpus.glob("*.md"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    asks = [
        fold(json.loads(line)["question"])
        for line in letters.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return lines, asks


def user_words(texts: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """``n`` distinct runs of 2-6 Chinese characters cut from ``texts`` (stand-ins for defined terms)."""
    rng = random.Random(seed)
    long = [t for t in texts if len(t) >= 12]
    words: set[str] = set()
    while len(words) < n:
        text = rng.choice(long)
        start, size = rng.randrange(len(text) - 6), rng.randint(2, 6)
        word = text[start : start + size]
        if all("\u4e00" <= ch <= "\u9fff" for ch in word):
            words.add(word)
    return sorted(words)


def best_ms(run: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in milliseconds (the least disturbed by the machine)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1000)
    return min(times)


def compare(texts: Sequence[str], words: Sequence[str], repeat: int) -> dict[str, dict[str, float]]:
    """Both segmenters on ``texts`` for each cut: ms per 1,000 characters and texts cut differently."""
    import jieba

    from zhtext import Tokenizer

    ours = Tokenizer(words)._seg
    theirs = jieba.Tokenizer()
    theirs.initialize()
    for word in words:
        theirs.add_word(word)
    kchars = sum(map(len, texts)) / 1000
    cuts: dict[str, tuple[Callable[[str], list[str]], Callable[[str], list[str]]]] = {
        "search": (
            lambda t: ours.cut_for_search(t, False),
            lambda t: list(theirs.cut_for_search(t, HMM=False)),
        ),
        "plain": (lambda t: ours.cut(t, False), lambda t: list(theirs.cut(t, HMM=False))),
        "plain+hmm": (lambda t: ours.cut(t, True), lambda t: list(theirs.cut(t, HMM=True))),
    }
    out = {}
    for name, (rust, python) in cuts.items():
        differ = sum(rust(t) != python(t) for t in texts)
        rust_ms = best_ms(lambda r=rust: [r(t) for t in texts], repeat) / kchars
        python_ms = best_ms(lambda p=python: [p(t) for t in texts], repeat) / kchars
        out[name] = {
            "jieba_ms_per_kchar": round(python_ms, 3),
            "rjieba_ms_per_kchar": round(rust_ms, 3),
            "speedup": round(python_ms / rust_ms, 1),
            "texts_cut_differently": differ,
        }
    return out


def letter_tokens(letters: Sequence[str], repeat: int) -> dict[str, float]:
    """``Tokenizer.tokens`` per letter, as retrieval calls it: median and longest, milliseconds."""
    from zhtext import default_tokenizer

    tokenizer = default_tokenizer()
    per = [best_ms(lambda t=t: tokenizer.tokens(t), repeat) for t in letters]
    return {"letters": len(letters), "p50_ms": round(statistics.median(per), 3), "max_ms": round(max(per), 3)}


_MEMORY_PROBE = """
import sys
import numpy  # every serving process has it before any tokenizer: not counted
import jieba  # both libraries imported before counting: only what each way builds is measured
import zhtext
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 1e6
start = rss()
words = ["计量周期", "甲乙签证单"]
if sys.argv[1] == "zhtext":
    from zhtext import Tokenizer
    shared, indexed = Tokenizer(), Tokenizer(words)
    shared.background_logprob("计入")  # the domain feature's counts, loaded as an index loads them
else:
    jieba.setLogLevel(60)
    shared = jieba.Tokenizer()
    shared.initialize()
    indexed = jieba.Tokenizer()
    indexed.FREQ, indexed.total, indexed.initialized = dict(shared.FREQ), shared.total, True
    for w in words:
        indexed.add_word(w)
print(round(rss() - start, 1))
"""


def memory() -> dict[str, float]:
    """Megabytes a fresh interpreter grows by building the shared and the user-word tokenizer."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return {
        way: float(
            subprocess.run(
                [sys.executable, "-c", _MEMORY_PROBE, way],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout.split()[-1]
        )
        for way in ("zhtext", "python jieba")
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each timing; the fastest is kept")
    ap.add_argument("--user-words", type=int, default=400, help="user words of the second comparison")
    args = ap.parse_args()
    loaded = load_texts()
    if loaded is None:
        print(f"shared corpus not found under {shared_dir()} (set KGQA_SHARED_DIR); nothing to measure")
        sys.exit(0)
    lines, letters = loaded
    texts = lines + letters
    report = {
        "texts": len(texts),
        "kchars": round(sum(map(len, texts)) / 1000, 1),
        "no user words": compare(texts, [], args.repeat),
        f"{args.user_words} user words": compare(texts, user_words(texts, args.user_words), args.repeat),
        "Tokenizer.tokens": letter_tokens(letters, args.repeat),
        "memory_mb": memory(),
    }
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    print(f"{report['texts']} texts, {report['kchars']}k characters (cas-all lines and the dev letters)")
    for key in ("no user words", f"{args.user_words} user words"):
        print(
            f"\n{key}:\n{'cut':<10} {'jieba ms/kchar':>15} {'rjieba ms/kchar':>16} {'speed-up':>9} {'differ':>7}"
        )
        for name, row in report[key].items():
            print(
                f"{name:<10} {row['jieba_ms_per_kchar']:>15} {row['rjieba_ms_per_kchar']:>16} "
                f"{row['speedup']:>8}x {row['texts_cut_differently']:>7}"
            )
    tok = report["Tokenizer.tokens"]
    print(
        f"\nTokenizer.tokens on {tok['letters']} letters: p50 {tok['p50_ms']} ms, longest {tok['max_ms']} ms"
    )
    mem = report["memory_mb"]
    print(
        f"memory of a serving process's two tokenizers: zhtext {mem['zhtext']} MB, "
        f"Python jieba {mem['python jieba']} MB"
    )


if __name__ == "__main__":
    main()
