"""Hybrid retrieval in two stages: many first-stage rankings fused, then a learned rerank.

The order of work for one question:

1. the question is cut into greeting, quotes, background and ask (serving/retrieval/question.py);
2. first stage, each ranking clauses from one angle: standards and articles the letter names
   (``direct``, and the named documents' best clauses, ``doc``), BM25 over the whole letter and
   over the ask alone, dense bge-small-zh over the ask, full-text (the key terms as phrases of
   the clause text, serving/retrieval/phrases.py), the quote lookup, and graph neighbours of the
   best hits;
3. weighted RRF fuses them into a pool of candidates (``rerank_depth``);
4. second stage: the reranker scores each candidate on features that see the whole question
   (serving/retrieval/features.py), and the answerability model scores the question from the
   reranked top; below the calibrated threshold the service answers NO_EVIDENCE;
5. the top k come back from the in-process snapshot (provenance included). Every ranking is
   served from the snapshot (``RetrievalIndex``); the one Neo4j read is the store's staleness
   check of the graph version, at most every ``stale_check_s``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import structlog

from kgqa.errors import ConfigError, GraphUnavailable
from serving.retrieval.config import RetrievalConfig
from serving.retrieval.direct import DirectMatch
from serving.retrieval.features import (
    ANSWERABILITY_FEATURES,
    CANDIDATE_FEATURES,
    CandidateScorer,
    Signals,
    best_by_clause,
    merge_max,
    wants_quantity,
)
from serving.retrieval.fusion import Fused, weighted_rrf
from serving.retrieval.index import IndexStore, RetrievalIndex
from serving.retrieval.question import Question, parse_question
from serving.retrieval.rerank import RetrievalModel
from serving.types import RetrievedClause

log = structlog.get_logger(__name__)


@dataclass
class Candidate:
    """A reranked candidate: its clause, reranker log-odds and the first-stage ranks it had."""

    clause_id: str
    doc_id: str
    logit: float
    sources: dict[str, int] = field(default_factory=dict)


@dataclass
class Rankings:
    """Everything retrieval decided for one question (the benchmark and the trainer read it).

    Attributes:
        question: the question as asked.
        parsed: its parts.
        signals: the first stage's rankings and per-clause signals.
        fused: the RRF pool, best first.
        candidates: the pool reranked, best first.
        answerable: P(the manuals answer it), from the answerability model.
        evidence: whether the service answers (answerable above the threshold, or an article
            named outright).
    """

    question: str
    parsed: Question
    signals: Signals
    fused: list[Fused] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    answerable: float = 1.0
    evidence: bool = True

    @property
    def rankings(self) -> dict[str, list[str]]:
        return self.signals.rankings

    @property
    def order(self) -> list[str]:
        """The final clause order (empty when refused)."""
        return [c.clause_id for c in self.candidates] if self.evidence else []


class HybridRetriever:
    """The production :class:`serving.service.Retriever`.

    Args:
        store: the index store (loaded; a stale index is refreshed in the background).
        model: the learned reranker and answerability model (``load_model``); ``None`` only to
            collect first-stage signals for training one.
        config: weights and depths; defaults to ``store.config``.
    """

    name = "hybrid"

    def __init__(
        self, store: IndexStore, model: RetrievalModel | None, config: RetrievalConfig | None = None
    ) -> None:
        self.store = store
        self.model = model
        self.config = config or store.config

    # -- the Retriever protocol ---------------------------------------------------------------
    def retrieve(self, question: str, k: int) -> list[RetrievedClause]:
        t0 = time.perf_counter()
        ranked = self.rank(question)
        if not ranked.evidence:
            log.debug("retrieval.no_evidence", answerable=round(ranked.answerable, 3))
            return []
        index = self.store.current()
        out: list[RetrievedClause] = []
        for cand in ranked.candidates[:k]:
            record = index.clauses.get(cand.clause_id)
            if record is None:
                continue
            out.append(
                RetrievedClause(
                    clause_id=record.clause_id,
                    version=record.version,
                    doc_id=record.doc_id,
                    doc_title=record.doc_title,
                    doc_version=record.doc_version,
                    number=record.number,
                    text=record.text,
                    section_path=list(record.section_path),
                    page_start=record.page_start,
                    page_end=record.page_end,
                    score=round(cand.logit, 4),
                    sources=dict(cand.sources),
                )
            )
        log.debug("retrieval.done", k=k, returned=len(out), ms=round((time.perf_counter() - t0) * 1000, 1))
        return out

    # -- first stage --------------------------------------------------------------------------
    def signals(self, question: str) -> tuple[Question, Signals]:
        """Parse the question and run every first-stage ranking (no reranking yet)."""
        self._refresh()
        index = self.store.current()
        cfg = self.config
        parsed = parse_question(question)
        tok = index.tokenizer
        ask_tokens = tok.tokens(parsed.ask)
        body = " ".join([parsed.body, *parsed.quotes])
        body_tokens = ask_tokens if body == parsed.ask else tok.tokens(body)  # a short question is all ask
        ask_terms = _terms(ask_tokens)
        body_terms = _key_terms(index, body_tokens, cfg.max_query_terms)
        direct = index.direct.resolve(parsed.text)
        rankings: dict[str, list[str]] = {"direct": [c for c in direct.clause_ids if c in index.clause_docs]}
        depth = cfg.depth
        rankings["bm25"] = list(best_by_clause(index.bm25.search(body_terms, depth * 3), index.units, depth))
        rankings["bm25_ask"] = list(
            best_by_clause(index.bm25.search(ask_terms, depth * 3), index.units, depth)
        )
        dense_sims: Mapping[str, float] = {}
        if index.dense is not None and index.vectors is not None and cfg.weight("dense") > 0:
            vector = self.store.encoder.encode_queries([_dense_query(parsed, cfg.dense_query_chars)])[0]
            sims = index.vectors @ vector
            top = np.argsort(-sims)[: depth * 3]
            by_clause = best_by_clause(((int(u), float(sims[u])) for u in top), index.units, depth)
            rankings["dense"] = list(by_clause)
            dense_sims = index.best_per_clause(sims)
        if cfg.weight("fulltext") > 0 and body_terms:
            hits = index.phrases.search(body_terms[: cfg.fulltext_terms], depth * 3)
            rankings["fulltext"] = list(best_by_clause(hits, index.units, depth))
        quote_scores = merge_max(
            best_by_clause(index.quotes.lookup(quote, depth), index.units, 10) for quote in parsed.quotes
        )
        rankings["quote"] = sorted(quote_scores, key=lambda c: -quote_scores[c])
        signals = Signals(
            ask_terms=ask_terms,
            body_terms=body_terms,
            rankings=rankings,
            direct=direct,
            quote_scores=quote_scores,
            dense_sims=dense_sims,
            wants_quantity=wants_quantity(parsed.ask),
            quoted_terms=parsed.terms,
            ask_cover=index.coverage(index.bm25.weights(ask_terms)),
        )
        rankings["doc"] = self._named_document_clauses(index, signals)
        pool = self._fuse(rankings)
        seeds = [f.clause_id for f in pool[: cfg.expand_top]]
        neighbours: list[str] = []
        for seed in seeds:
            neighbours.extend(n for n in index.neighbours.get(seed, []) if n not in neighbours)
        rankings["graph"] = [n for n in neighbours if n not in seeds]
        return parsed, signals

    def _named_document_clauses(self, index: RetrievalIndex, signals: Signals) -> list[str]:
        """The best clauses of each document the question names, by coverage of the ask.

        A letter that names 《企业会计准则第21号——租赁》 and asks about 初始直接费用 wants the
        lease clause on initial direct costs even when no lexical ranking put it in the pool.
        """
        direct: DirectMatch = signals.direct
        if not direct.doc_ids or not signals.ask_terms:
            return []
        cover = signals.ask_cover
        out: list[tuple[float, str]] = []
        for doc in direct.doc_ids[:4]:
            clauses = index.clauses_of(doc)
            scored = sorted(((cover[c], c) for c in clauses), reverse=True)
            out.extend(
                (s * direct.confidence.get(doc, 0.5), c)
                for s, c in scored[: self.config.doc_clauses]
                if s > 0
            )
        return [c for _, c in sorted(out, key=lambda p: -p[0])]

    def pool(self, signals: Signals) -> list[str]:
        """The candidates the reranker scores: the fused top ``rerank_depth``."""
        return [f.clause_id for f in self._fuse(signals.rankings)[: self.config.rerank_depth]]

    def _fuse(self, rankings: dict[str, list[str]]) -> list[Fused]:
        fused = weighted_rrf(rankings, self.config.weights, self.config.rrf_k)
        return [f for f in fused if f.score > 0]

    # -- second stage -------------------------------------------------------------------------
    def rank(self, question: str) -> Rankings:
        """Both stages for ``question``: the reranked candidates and the refusal decision."""
        parsed, signals = self.signals(question)
        return self.rerank(question, parsed, signals)

    def rerank(
        self, question: str, parsed: Question, signals: Signals, exclude: set[str] | None = None
    ) -> Rankings:
        """Rerank the pool and decide answerability; ``exclude`` hides documents (training)."""
        if self.model is None:
            raise ConfigError("this retriever has no retrieval model; load one with load_model()")
        index = self.store.current()
        fused = self._fuse(signals.rankings)
        pool = [f.clause_id for f in fused[: self.config.rerank_depth]]
        scorer = CandidateScorer(index)
        ids, matrix = scorer.features(signals, pool, exclude)
        logits = self.model.scores(matrix, CANDIDATE_FEATURES)
        answer_x = scorer.answerability(signals, ids, matrix, logits, exclude)
        cols = self.model.answerability.columns(ANSWERABILITY_FEATURES)
        answerable = float(self.model.answerability.probabilities(answer_x[cols].reshape(1, -1))[0])
        sources = {f.clause_id: f.sources for f in fused}
        order = np.argsort(-logits, kind="stable") if len(ids) else []
        candidates = diversify(
            [
                Candidate(ids[i], index.clause_docs[ids[i]], float(logits[i]), dict(sources.get(ids[i], {})))
                for i in order
            ],
            self.config.max_per_document,
            self.config.diversify_top,
        )
        threshold = self.model.threshold if self.config.refuse else None
        named_article = any(c in signals.direct.clause_ids for c in ids)
        evidence = bool(candidates) and (threshold is None or answerable >= threshold or named_article)
        return Rankings(question, parsed, signals, fused, candidates, answerable, evidence)

    def _refresh(self) -> None:
        try:
            self.store.refresh_if_stale()
        except GraphUnavailable:
            log.warning("retrieval.stale_check_failed")


def diversify(candidates: list[Candidate], per_document: int, top: int) -> list[Candidate]:
    """The reranked order with at most ``per_document`` clauses of one document in the first
    ``top`` places (when other documents have candidates): a letter's answer often spans two
    standards (减值 in 金融工具 and 日后事项), and five citations from one are a poorer answer
    than four and the best of the next. Deferred candidates follow in their order."""
    if per_document <= 0:
        return candidates
    head: list[Candidate] = []
    deferred: list[Candidate] = []
    rest: list[Candidate] = []
    counts: dict[str, int] = {}
    for cand in candidates:
        if len(head) >= top:
            rest.append(cand)
        elif counts.get(cand.doc_id, 0) >= per_document:
            deferred.append(cand)
        else:
            counts[cand.doc_id] = counts.get(cand.doc_id, 0) + 1
            head.append(cand)
    missing = top - len(head)  # too few other documents: the deferred fill the places left
    return head + deferred[:missing] + deferred[missing:] + rest


def _terms(tokens: list[str]) -> list[str]:
    """Distinct content terms (two characters or more when there are any)."""
    distinct = list(dict.fromkeys(tokens))
    return [t for t in distinct if len(t) >= 2] or distinct


def _key_terms(index: RetrievalIndex, tokens: list[str], limit: int) -> list[str]:
    """The ``limit`` most informative distinct terms of a long text (IDF × frequency, capped)."""
    counts: dict[str, int] = {}
    for t in tokens:
        if len(t) >= 2:
            counts[t] = counts.get(t, 0) + 1
    if not counts:
        return list(dict.fromkeys(tokens))[:limit]
    bm25 = index.bm25
    ranked = sorted(counts, key=lambda t: -(bm25.idf(t) * (1 + np.log(counts[t]))))
    return ranked[:limit]


def _dense_query(parsed: Question, limit: int) -> str:
    """What the encoder reads: the ask, with the last background sentence when the ask is bare."""
    ask = parsed.ask
    if len(ask) < 20 and parsed.background:
        ask = parsed.background[-1] + ask
    return ask[:limit]


__all__ = ["Candidate", "HybridRetriever", "Rankings"]
