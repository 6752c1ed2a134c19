"""Features of the second stage: what the reranker and the answerability model see.

The first stage (BM25, dense, full-text, quotes, named standards, graph neighbours) each rank
clauses from one angle; fusing their ranks finds candidates but cannot weigh the angles against
the question at hand. These features look at each candidate with the whole question in view:
how close it is to the *ask* (not to the background a letter quotes back), whether it holds the
quoted text, whether its document is the one the letter names, whether it can supply the number
the ask wants. They are cheap (lookups over a few dozen candidates, and coverage vectors the
index computes for all clauses at once) and bounded to [0, 1] or close, so a linear model over
them stays readable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from serving.retrieval.config import RETRIEVERS
from serving.retrieval.direct import DirectMatch

RANKINGS = RETRIEVERS
"""The first-stage rankings a candidate may come from (also the keys of its ``sources``)."""

CANDIDATE_FEATURES = (
    "rr_fused",
    *(f"rr_{name}" for name in RANKINGS),
    "dense_sim",
    "dense_gap",
    "dense_doc_gap",
    "ask_cover",
    "ask_doc_gap",
    "body_cover",
    "title_cover",
    "quote",
    "quoted_terms",
    "doc_named",
    "article_named",
    "doc_share",
    "quantity_gap",
    "opening_article",
    "log_len",
)

ANSWERABILITY_FEATURES = (
    "top_logit",
    "margin",
    "ask_domain",
    "top_dense",
    "top_ask_cover",
    "top_quote",
    "named",
    "ask_known",
    "ask_terms",
    "top_quantity_gap",
)

CANDIDATE_SIGNS = {
    "rr_fused": 1,
    **{f"rr_{name}": 1 for name in RANKINGS},
    "dense_sim": 1,
    "dense_gap": 1,
    "dense_doc_gap": 1,
    "ask_cover": 1,
    "ask_doc_gap": 1,
    "body_cover": 1,
    "title_cover": 1,
    "quote": 1,
    "quoted_terms": 1,
    "doc_named": 1,
    "article_named": 1,
    "doc_share": 1,
    "quantity_gap": -1,
}
"""The direction each candidate feature can only push (see ``LinearModel.fit``)."""

ANSWERABILITY_SIGNS = {
    "top_logit": 1,
    "margin": 1,
    "ask_domain": 1,
    "top_dense": 1,
    "top_ask_cover": 1,
    "top_quote": 1,
    "named": 1,
    "ask_known": 1,
    "top_quantity_gap": -1,
}
"""The direction each answerability feature can only push (see ``LinearModel.fit``)."""

UNSEEN_TERM = -3.0
"""The domain log-ratio of a term the manuals never use (about that of an everyday word)."""

_WANTS_QUANTITY = re.compile(
    r"多少|几(?:天|日|年|个月|月|倍|成|级|项|次)|比例|比率|税率|费率|利率是|征收率|期限|时限|多长|多久|上限|下限|标准是|幅度"
)
_HAS_QUANTITY = re.compile(
    r"[0-9０-９]|百分之|千分之|[一二三四五六七八九十百千]+(?:日|天|年|个月|倍|元|万元|%|个工作日)"
)
_OPENING = re.compile(r"^第[一二]条$")


@dataclass
class Signals:
    """Everything the first stage found for one question, before any candidate is scored.

    Rankings are clause ids best first; ``exclude`` removes documents from every view (the
    trainer asks "what if the manuals lacked this document?" to learn what silence looks like).
    """

    ask_terms: list[str]
    body_terms: list[str]
    rankings: dict[str, list[str]]
    direct: DirectMatch
    quote_scores: dict[str, float] = field(default_factory=dict)
    dense_sims: Mapping[str, float] = field(default_factory=dict)
    wants_quantity: bool = False
    quoted_terms: list[str] = field(default_factory=list)
    ask_cover: Mapping[str, float] = field(default_factory=dict)
    """Each clause's coverage of the ask's terms (``RetrievalIndex.coverage``): computed once,
    read by the named-document ranking and by the reranker's features."""


def wants_quantity(ask: str) -> bool:
    """Does the ask want a number (多少, 比例, 期限…)? A clause with no number cannot give it."""
    return bool(_WANTS_QUANTITY.search(ask))


def has_quantity(text: str) -> bool:
    return bool(_HAS_QUANTITY.search(text))


def reciprocal_ranks(ids: Sequence[str], keep: Iterable[str] | None = None) -> dict[str, float]:
    """1/rank of each id (first occurrence), counting only ids in ``keep`` when given."""
    allowed = set(keep) if keep is not None else None
    out: dict[str, float] = {}
    rank = 0
    for cid in ids:
        if cid in out or (allowed is not None and cid not in allowed):
            continue
        rank += 1
        out[cid] = 1.0 / rank
    return out


class CandidateScorer:
    """Computes candidate features against one index (clause texts, IDF, titles).

    Args:
        index: the RetrievalIndex the signals came from (duck-typed: ``clauses``, ``bm25``,
            ``coverage``, ``headings``, ``clause_docs``, ``term_docs``, ``logprob``,
            ``tokenizer``).
    """

    def __init__(self, index) -> None:  # noqa: ANN001 - RetrievalIndex, imported lazily to avoid a cycle
        self._index = index

    def title_coverage(self, weights: Mapping[str, float], clause_id: str) -> float:
        """IDF-weighted share of the query terms (``Bm25Index.weights``) in the clause's document
        title and section path."""
        total = sum(weights.values())
        heading = self._index.headings.get(clause_id)
        if not total or heading is None:
            return 0.0
        return sum(w for t, w in weights.items() if t in heading) / total

    def known_share(self, terms: Sequence[str], exclude: set[str]) -> float:
        """IDF-weighted share of ``terms`` some document outside ``exclude`` uses as a word."""
        if not terms:
            return 0.0
        bm25 = self._index.bm25
        total = sum(bm25.idf(t) for t in terms)
        known = sum(bm25.idf(t) for t in terms if self._index.term_docs(t) - exclude)
        return known / total if total else 0.0

    def domain(self, terms: Sequence[str], exclude: set[str] | None = None) -> float:
        """How much the ask speaks the manuals' language: the mean log-ratio of each term's
        frequency in the indexed corpus to its frequency in general Chinese (jieba's dictionary).

        Questions about what the manuals regulate use their vocabulary (计入, 确认, 摊销, 合同履约
        成本) far more than everyday text does; questions about other fields (试用期, 征收率, 产假)
        do not, even when a few of their words occur somewhere in the manuals. A word the manuals
        never use scores ``UNSEEN_TERM`` whatever its general frequency: smoothing would make a
        word unknown to both sides (fvoci, 退税率) look like the manuals' own, and more so the
        smaller the corpus.
        """
        if not terms:
            return 0.0
        index = self._index
        hidden = exclude or set()
        ratios = [
            index.logprob(t, hidden) - index.tokenizer.background_logprob(t)
            if index.term_docs(t) - hidden
            else UNSEEN_TERM
            for t in terms
        ]
        return float(np.mean(ratios))

    def features(
        self, signals: Signals, pool: Sequence[str], exclude: set[str] | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Feature rows (``CANDIDATE_FEATURES`` order) for the pool's clauses outside ``exclude``.

        Returns:
            The kept clause ids and a ``(len(ids), len(CANDIDATE_FEATURES))`` matrix.
        """
        exclude = exclude or set()
        docs = self._index.clause_docs
        ids = [c for c in dict.fromkeys(pool) if c in docs and docs[c] not in exclude]
        keep = set(ids)
        ranks = {
            name: reciprocal_ranks(
                [c for c in signals.rankings.get(name, []) if docs.get(c) not in exclude], keep
            )
            for name in RANKINGS
        }
        best_dense = max((signals.dense_sims.get(c, 0.0) for c in ids), default=0.0)
        head = ids[:20]
        doc_counts: dict[str, int] = {}
        for c in head:
            doc_counts[docs[c]] = doc_counts.get(docs[c], 0) + 1
        named_articles = set(signals.direct.clause_ids)
        ask_weights = self._index.bm25.weights(signals.ask_terms)
        body_weights = self._index.bm25.weights(signals.body_terms)
        ask_cover = signals.ask_cover
        body_cover = self._index.coverage(body_weights)
        best_in_doc: dict[str, tuple[float, float]] = {}
        for c in ids:  # the best dense similarity and ask coverage among each document's candidates
            dense, cover = best_in_doc.get(docs[c], (-1.0, 0.0))
            best_in_doc[docs[c]] = (max(dense, signals.dense_sims.get(c, 0.0)), max(cover, ask_cover[c]))
        rows = []
        for position, c in enumerate(ids):  # ids keep the pool's (fused) order
            record = self._index.clauses.get(c)
            text = record.text if record else ""
            number = record.number if record else ""
            dense = signals.dense_sims.get(c, 0.0)
            rows.append(
                [
                    1.0 / (1 + position),
                    *(ranks[name].get(c, 0.0) for name in RANKINGS),
                    dense,
                    dense - best_dense,
                    dense - best_in_doc[docs[c]][0],
                    ask_cover[c],
                    ask_cover[c] - best_in_doc[docs[c]][1],
                    body_cover[c],
                    self.title_coverage(ask_weights, c),
                    signals.quote_scores.get(c, 0.0),
                    _share_present(signals.quoted_terms, text),
                    signals.direct.confidence.get(docs[c], 0.0),
                    1.0 if c in named_articles else 0.0,
                    doc_counts.get(docs[c], 0) / max(1, len(head)),
                    1.0 if signals.wants_quantity and not has_quantity(text) else 0.0,
                    1.0 if _OPENING.match(number) else 0.0,
                    math.log1p(len(text)) / 8.0,
                ]
            )
        matrix = np.asarray(rows, dtype=np.float64).reshape(len(ids), len(CANDIDATE_FEATURES))
        return ids, matrix

    def answerability(
        self,
        signals: Signals,
        ids: Sequence[str],
        matrix: np.ndarray,
        logits: np.ndarray,
        exclude: set[str] | None = None,
    ) -> np.ndarray:
        """The question's features (``ANSWERABILITY_FEATURES`` order) from its reranked candidates."""
        exclude = exclude or set()
        col = {name: i for i, name in enumerate(CANDIDATE_FEATURES)}
        values = {
            "top_logit": -10.0,
            "margin": 0.0,
            "ask_domain": self.domain(signals.ask_terms, exclude),
            "top_dense": 0.0,
            "top_ask_cover": 0.0,
            "top_quote": 0.0,
            "named": max((v for d, v in signals.direct.confidence.items() if d not in exclude), default=0.0),
            "ask_known": self.known_share(signals.ask_terms, exclude),
            "ask_terms": math.log1p(len(signals.ask_terms)),
            "top_quantity_gap": 1.0 if signals.wants_quantity else 0.0,
        }
        if len(ids):
            order = np.argsort(-logits, kind="stable")
            top = order[0]
            second = logits[order[1]] if len(order) > 1 else logits[top] - 5.0
            values.update(
                top_logit=logits[top],
                margin=logits[top] - second,
                top_dense=matrix[top, col["dense_sim"]],
                top_ask_cover=matrix[top, col["ask_cover"]],
                top_quote=matrix[top, col["quote"]],
                top_quantity_gap=matrix[top, col["quantity_gap"]],
            )
        return np.asarray([values[name] for name in ANSWERABILITY_FEATURES], dtype=np.float64)


def _share_present(terms: Sequence[str], text: str) -> float:
    """The share of ``terms`` found verbatim in ``text`` (0 when there are none)."""
    if not terms:
        return 0.0
    return sum(1 for t in terms if t in text) / len(terms)


def best_by_clause(unit_scores: Iterable[tuple[int, float]], units: Sequence, limit: int) -> dict[str, float]:
    """Unit scores -> the best score per clause, at most ``limit`` clauses (in score order)."""
    out: dict[str, float] = {}
    for u, score in sorted(unit_scores, key=lambda p: -p[1]):
        cid = units[u].clause_id
        if cid not in out:
            out[cid] = score
            if len(out) >= limit:
                break
    return out


def merge_max(maps: Iterable[Mapping[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in maps:
        for k, v in m.items():
            out[k] = max(v, out.get(k, 0.0))
    return out


__all__ = [
    "ANSWERABILITY_FEATURES",
    "ANSWERABILITY_SIGNS",
    "CANDIDATE_FEATURES",
    "CANDIDATE_SIGNS",
    "RANKINGS",
    "CandidateScorer",
    "Signals",
    "best_by_clause",
    "has_quantity",
    "merge_max",
    "reciprocal_ranks",
    "wants_quantity",
]
