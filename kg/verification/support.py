"""How well a clause covers a sentence (the support score) and where in the clause (the quote).

The score is the *character-bigram recall* of the sentence by the clause, after both sides went
through :func:`kg.normalize.normalize_text` (so 十四日 and 14天 are the same bigrams) and lost
punctuation, and after the sentence lost its framing (根据……规定，/ 综上 / 此外). On the test answers
this separates faithful paraphrases (reordered, 应当 -> 应, numbers rewritten: recall 0.65-1.0)
from invented sentences about the same topic (0.05-0.40) better than
``fuzz.partial_ratio``, which is order-sensitive and drops to ~0.55 on reordered paraphrases.
The quote is made of whole sentences of the original clause text, chosen by the same bigrams.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from kg.normalize import normalize_text
from zhtext import CJK, sentence_spans

_NON_CONTENT = re.compile(rf"[^{CJK}0-9A-Za-z%.]")
_FRAME = re.compile(
    r"^(?:(?:根据|依据|依照|按照|按)[^，,。；：:]{0,40}?(?:规定|要求)[，,：:]?|综上所述|综上|因此|此外|另外|同时|具体而言|也就是说)[，,：:]?"
)


def content(text: str) -> str:
    """Normalized numbers, no punctuation or spaces: the form both sides are compared in."""
    return _NON_CONTENT.sub("", normalize_text(text))


def bigrams(text: str) -> frozenset[str]:
    """Character bigrams of already-normalized content (a single character counts as one)."""
    if len(text) == 1:
        return frozenset((text,))
    return frozenset(text[i : i + 2] for i in range(len(text) - 1))


def sentence_bigrams(sentence: str) -> frozenset[str]:
    """Bigrams of a sentence without its framing words (根据本办法第五条规定，...)."""
    return bigrams(content(_FRAME.sub("", sentence.strip())))


def clause_bigrams(texts: Iterable[str]) -> frozenset[str]:
    """Bigrams of a clause's text plus the words it may be cited by (number, title)."""
    out: set[str] = set()
    for text in texts:
        out |= bigrams(content(text))
    return frozenset(out)


def recall(sentence: frozenset[str], clause: frozenset[str]) -> float:
    """Share of the sentence's bigrams that the clause contains (1.0 for an empty sentence)."""
    if not sentence:
        return 1.0
    return len(sentence & clause) / len(sentence)


def segments(text: str) -> tuple[Segment, ...]:
    """The clause's sentences and list items (split at 。；！？, colons and line breaks) with their bigrams."""
    out: list[Segment] = []
    for span in sentence_spans(text, colon=True):
        grams = bigrams(content(text[span.start : span.end]))
        if grams:
            out.append((span.start, span.end, grams))
    return tuple(out)


Segment = tuple[int, int, frozenset[str]]


def align_quote(sentence: frozenset[str], clause_segments: tuple[Segment, ...]) -> tuple[int, int]:
    """The span of whole clause sentences that covers ``sentence`` (its bigrams).

    Greedy set cover: take the clause sentence that covers most of what is still uncovered, as
    long as it adds a real share (a fifth of the sentence); the quote runs from the first to the
    last one taken. Whole clause sentences read better in an audit trail than a window cut at an
    arbitrary character, and unlike ``partial_ratio_alignment``'s fixed-length window this does
    not cut a reordered paraphrase in half.
    """
    remaining = set(sentence)
    chosen: list[Segment] = []
    while remaining and clause_segments:
        best = max(clause_segments, key=lambda seg: len(seg[2] & remaining))
        gain = len(best[2] & remaining)
        if gain == 0 or (chosen and gain < max(2, len(sentence) / 5)):
            break
        chosen.append(best)
        remaining -= best[2]
    if not chosen:
        return 0, 0
    return min(a for a, _, _ in chosen), max(b for _, b, _ in chosen)
