"""The extractive backend: answers with the retrieved clauses' own sentences, quoted verbatim.

It needs no model, so it is the default, the fallback the ``strict`` policy swaps in for an
unverified generation, and the baseline generative models are measured against. Because every
sentence is copied from the clause it cites, its answers pass the verifier by construction: the
only words it adds are a frame naming the cited clause (``根据《title》第五条规定：``), whose title
and number belong to that clause.

Selection answers the *ask*: a letter's background and the rules it quotes back are not what it
asks about (serving/retrieval/question.py cuts them apart). The sentences of the top clauses (at
most ``max_clauses``, in the retriever's order: the best first) are scored by the words they
share with the ask (longer shared words weigh more); a sentence the letter itself quoted is never
quoted back to it. Each clause with a sentence that addresses the ask contributes its best one,
in rank order, so that the citations run from the most relevant down; the remaining budget
(``max_sentences``) goes to the next best sentences that score at least half the best. When no
sentence shares a word with the ask, the top clause's first sentence is quoted: the retriever
ranked it first for a reason, and a verbatim quote cannot mislead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from kg.citations import format_marker
from kg.prompting import REFUSAL_ANSWER
from serving.backends.base import expired
from serving.retrieval.question import parse_question
from serving.retrieval.quotes import ngrams
from serving.types import Generation, RetrievedClause
from zhtext import (
    COLONS,
    CONTENT_CHAR,
    SENTENCE_ENDS,
    STOPWORDS,
    Tokenizer,
    default_tokenizer,
    split_sentences,
)

_TERMINAL = re.compile(rf"[{SENTENCE_ENDS}{COLONS}]+$")
_COLON_END = re.compile(rf"[{COLONS}]$")
_LIST_ITEMS = 4
"""A quoted list lead-in brings up to this many of its items beyond the sentence budget."""
QUOTED_BACK = 0.6
"""A sentence whose character n-grams are this much inside a quote of the letter was quoted back."""
SENTENCE_CACHE = 16384
"""Clause sentences whose words are kept (the manuals' sentences recur in every answer that quotes
them; segmenting them again was most of an extractive answer's time)."""


@dataclass(frozen=True)
class _Sentence:
    rank: int  # the clause's rank among the contexts
    position: int  # the sentence's position in its clause
    text: str
    score: float


def _strip_number(sentence: str, number: str) -> str:
    """``第五条 存货应当……`` -> ``存货应当……``: the frame already names the article."""
    if number and sentence.startswith(number):
        rest = sentence[len(number) :].lstrip(" \u3000")
        if CONTENT_CHAR.search(rest):
            return rest
    return sentence


class ExtractiveBackend:
    """Quote the best sentences of the best clauses, each followed by its clause's marker.

    Args:
        max_clauses: clauses (from the top of the ranking) that may be quoted.
        max_sentences: sentences quoted in total.
        tokenizer: the word segmenter (the process-wide :func:`zhtext.default_tokenizer` when None).
    """

    model_id = "extractive"

    def __init__(
        self, max_clauses: int = 5, max_sentences: int = 6, tokenizer: Tokenizer | None = None
    ) -> None:
        self.max_clauses = max_clauses
        self.max_sentences = max_sentences
        self._tokenizer = tokenizer or default_tokenizer()
        self._sentence_words = lru_cache(maxsize=SENTENCE_CACHE)(self._words)

    def generate(
        self, question: str, contexts: list[RetrievedClause], *, deadline: float | None = None
    ) -> Generation:
        """The answer; the refusal text when there are no clauses to quote."""
        return Generation("".join(self.stream(question, contexts, deadline=deadline)), self.model_id)

    def stream(
        self, question: str, contexts: list[RetrievedClause], *, deadline: float | None = None
    ) -> Iterator[str]:
        """The answer in pieces: each clause's frame, then each quoted sentence with its marker.

        Building the answer takes milliseconds, so the deadline is only checked between pieces.
        """
        chosen = self._select(question, contexts[: self.max_clauses])
        if not chosen:  # no clauses, or none with a sentence to quote
            yield REFUSAL_ANSWER
            return
        first = True
        for rank, clause in enumerate(contexts[: self.max_clauses]):
            sentences = [s for s in chosen if s.rank == rank]
            if not sentences:
                continue
            if expired(deadline):
                return
            yield ("" if first else "\n") + _frame(clause)
            first = False
            for s in sentences:
                yield _cite(s.text, clause.clause_id)

    def _select(self, question: str, contexts: list[RetrievedClause]) -> list[_Sentence]:
        """The sentences to quote, in clause rank order, then sentence order."""
        parsed = parse_question(question)
        ask = self._words(parsed.ask) or self._words(parsed.body)
        quoted = [ngrams(q) for q in parsed.quotes]
        candidates: list[_Sentence] = []
        for rank, clause in enumerate(contexts):
            for position, sentence in enumerate(split_sentences(clause.text)):
                if position == 0:
                    sentence = _strip_number(sentence, clause.number)
                if quoted and _quoted_back(sentence, quoted):
                    continue
                shared = ask & self._sentence_words(sentence)
                candidates.append(_Sentence(rank, position, sentence, float(sum(len(w) for w in shared))))
        scored = [c for c in candidates if c.score > 0]
        if not scored:
            return candidates[:1]
        by_rank = sorted(scored, key=lambda c: (c.rank, -c.score, c.position))
        chosen: dict[tuple[int, int], _Sentence] = {}
        for c in by_rank:  # each clause's best sentence, best clause first
            if len(chosen) >= self.max_sentences:
                break
            if all(k[0] != c.rank for k in chosen):
                chosen[(c.rank, c.position)] = c
        by_clause: dict[int, list[_Sentence]] = {}
        for c in candidates:
            by_clause.setdefault(c.rank, []).append(c)
        for c in list(chosen.values()):  # a list's lead-in ("满足下列条件的：") needs its items
            if _COLON_END.search(c.text):
                for item in by_clause[c.rank]:
                    if item.position > c.position and len(chosen) < self.max_sentences + _LIST_ITEMS:
                        chosen.setdefault((item.rank, item.position), item)
        floor = max(c.score for c in scored) / 2
        for c in sorted(scored, key=lambda c: (-c.score, c.rank, c.position)):
            if len(chosen) >= self.max_sentences:
                break
            if c.score >= floor:
                chosen.setdefault((c.rank, c.position), c)
        return sorted(chosen.values(), key=lambda c: (c.rank, c.position))

    def _words(self, text: str) -> frozenset[str]:
        """jieba words with content, stop words removed."""
        return frozenset(
            w for w in self._tokenizer.words(text) if CONTENT_CHAR.search(w) and w not in STOPWORDS
        )


def _quoted_back(sentence: str, quotes: list[set[str]]) -> bool:
    grams = ngrams(sentence)
    return bool(grams) and any(len(grams & q) >= QUOTED_BACK * len(grams) for q in quotes)


def _frame(clause: RetrievedClause) -> str:
    """``根据《title》第五条规定：`` — the verifier strips this frame before comparing sentences."""
    return (
        f"根据《{clause.doc_title}》{clause.number}规定："
        if clause.number
        else f"根据《{clause.doc_title}》规定："
    )


def _cite(sentence: str, clause_id: str) -> str:
    """The sentence with its marker before its end punctuation: ``……计量[[id]]。``."""
    end = _TERMINAL.search(sentence)
    if end is None:
        return sentence + format_marker(clause_id)
    return sentence[: end.start()] + format_marker(clause_id) + end.group(0)


__all__ = ["ExtractiveBackend"]
