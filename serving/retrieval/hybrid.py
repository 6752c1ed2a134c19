"""Hybrid retrieval: direct references, BM25, dense, Neo4j full-text and graph expansion, fused.

The order of work for one question:

1. named documents/articles (``收入准则第五条``) are resolved against the alias table;
2. BM25, dense and full-text each rank clauses (chunks count for their clause: best unit wins);
3. the "min evidence" rule: unless the question names a clause, some lexical candidate must
   contain enough of the question's content words — otherwise there is nothing to cite and the
   service answers NO_EVIDENCE instead of letting a model improvise over unrelated clauses;
4. weighted RRF fuses the rankings (plus ``doc``: candidates from a named document);
5. the graph adds neighbours of the top hits as a low-weight ranking;
6. named clauses go first, then the fused order; the top k are read from the graph (the active
   version, with provenance) and returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import neo4j
import structlog

from kg import queries as q
from kg.writer import graph_errors
from kgqa.errors import GraphUnavailable
from serving.retrieval.config import RetrievalConfig
from serving.retrieval.expansion import GraphExpander
from serving.retrieval.fulltext import FulltextRetriever
from serving.retrieval.fusion import Fused, weighted_rrf
from serving.retrieval.index import IndexStore, RetrievalIndex
from serving.types import RetrievedClause

log = structlog.get_logger(__name__)


@dataclass
class Rankings:
    """Everything retrieval decided for one question, before reading clauses from the graph.

    ``rankings`` holds each retriever's clause ids (best first); ``fused`` the final order;
    ``evidence`` whether the min-evidence rule let the question through.
    """

    question: str
    tokens: list[str]
    rankings: dict[str, list[str]] = field(default_factory=dict)
    direct_docs: list[str] = field(default_factory=list)
    coverage: float = 0.0
    matched_terms: int = 0
    corpus_share: float = 0.0
    evidence: bool = True
    fused: list[Fused] = field(default_factory=list)


class HybridRetriever:
    """The production :class:`serving.service.Retriever`.

    Args:
        store: the index store (loaded; a stale index is refreshed in the background).
        driver: an open ``neo4j.Driver`` (full-text, expansion, reading the returned clauses).
        config: weights and rules; defaults to ``store.config``.
        database: Neo4j database; ``None`` = the server default.
    """

    name = "hybrid"

    def __init__(
        self,
        store: IndexStore,
        driver: neo4j.Driver,
        config: RetrievalConfig | None = None,
        database: str | None = None,
    ) -> None:
        self.store = store
        self.config = config or store.config
        self._driver = driver
        self._database = database
        self._fulltext = FulltextRetriever(driver, database)
        self._expander = GraphExpander(driver, database)

    # -- the Retriever protocol ---------------------------------------------------------------
    def retrieve(self, question: str, k: int) -> list[RetrievedClause]:
        t0 = time.perf_counter()
        ranked = self.rank(question)
        if not ranked.evidence:
            log.debug("retrieval.no_evidence", coverage=round(ranked.coverage, 3), terms=ranked.matched_terms)
            return []
        fused = ranked.fused
        clauses = self._read_clauses([f.clause_id for f in fused[: k * 2]])
        out: list[RetrievedClause] = []
        for f in fused:
            clause = clauses.get(f.clause_id)
            if clause is None:
                continue
            clause.score = round(f.score, 6)
            clause.sources = dict(f.sources)
            out.append(clause)
            if len(out) == k:
                break
        log.debug("retrieval.done", k=k, returned=len(out), ms=round((time.perf_counter() - t0) * 1000, 1))
        return out

    # -- ranking ------------------------------------------------------------------------------
    def rank(self, question: str, *, expand: bool = True) -> Rankings:
        """All rankings and the fused order for ``question`` (the benchmark scores each one)."""
        self._refresh()
        index = self.store.current()
        cfg = self.config
        ranked = Rankings(question, index.tokenizer.tokens(question))
        direct = index.direct.resolve(question)
        ranked.direct_docs = direct.doc_ids
        ranked.rankings["direct"] = [c for c in direct.clause_ids if c in index.clause_docs]
        bm25_units = index.bm25.search(ranked.tokens, cfg.depth * 3)
        ranked.rankings["bm25"] = _clauses_of(index, [u for u, _ in bm25_units], cfg.depth)
        if index.dense is not None and (cfg.weight("dense") > 0 or cfg.build_dense):
            vector = self.store.encoder.encode_queries([question])[0]
            dense_units = index.dense.search(vector, cfg.depth * 3)
            ranked.rankings["dense"] = _clauses_of(index, [u for u, _ in dense_units], cfg.depth)
        if cfg.weight("fulltext") > 0:
            hits = self._fulltext.retrieve(question, cfg.depth)
            ranked.rankings["fulltext"] = [h.clause_id for h in hits if h.clause_id in index.clause_docs]
        self._judge_evidence(index, ranked, [u for u, _ in bm25_units[: cfg.depth]])
        if direct.doc_ids and cfg.weight("doc") > 0:
            pool = weighted_rrf(
                {n: ranked.rankings[n] for n in ("bm25", "dense", "fulltext") if n in ranked.rankings},
                cfg.weights,
                cfg.rrf_k,
            )
            wanted = set(direct.doc_ids)
            ranked.rankings["doc"] = [
                f.clause_id for f in pool if index.clause_docs.get(f.clause_id) in wanted
            ]
        fused = self._fuse(ranked.rankings)
        if expand and cfg.weight("graph") > 0 and fused:
            seeds = [f.clause_id for f in fused[: cfg.expand_top]]
            ranked.rankings["graph"] = self._expander.neighbours(
                seeds, max_entity_clauses=cfg.expand_max_entity_clauses
            )
            fused = self._fuse(ranked.rankings)
        ranked.fused = self._order(fused, ranked.rankings["direct"])
        return ranked

    def _fuse(self, rankings: dict[str, list[str]]) -> list[Fused]:
        fused = weighted_rrf(rankings, self.config.weights, self.config.rrf_k)
        return [f for f in fused if f.score > 0]

    def _order(self, fused: list[Fused], direct: list[str]) -> list[Fused]:
        """Named clauses first (whatever the other retrievers think), the fused order after."""
        if not self.config.direct_first or not direct:
            return fused
        by_id = {f.clause_id: f for f in fused}
        head = [by_id[c] for c in direct if c in by_id]
        return head + [f for f in fused if f.clause_id not in set(direct)]

    def _judge_evidence(self, index: RetrievalIndex, ranked: Rankings, bm25_units: list[int]) -> None:
        """The min-evidence rule, on the question's multi-character content words.

        Two measures, both IDF-weighted: how much of the question the corpus knows at all, and
        how much of it the best lexical candidate (a BM25 unit or a full-text clause) contains.
        """
        cfg = self.config
        terms = [t for t in dict.fromkeys(ranked.tokens) if len(t) >= 2] or list(dict.fromkeys(ranked.tokens))
        units = list(bm25_units)
        for cid in ranked.rankings.get("fulltext", [])[: cfg.depth]:
            units.extend(index.units_of(cid))
        best = (0.0, 0)
        for u in dict.fromkeys(units):
            best = max(best, index.bm25.support(terms, u, index.units[u].text))
        ranked.coverage, ranked.matched_terms = best
        ranked.corpus_share = index.bm25.corpus_share(terms)
        if ranked.rankings["direct"] or cfg.min_coverage <= 0:
            ranked.evidence = True
            return
        need = min(cfg.min_matched_terms, len(terms))
        ranked.evidence = (
            bool(terms)
            and best[0] >= cfg.min_coverage
            and best[1] >= need
            and ranked.corpus_share >= cfg.min_corpus_share
        )

    def _refresh(self) -> None:
        try:
            self.store.refresh_if_stale()
        except GraphUnavailable:
            log.warning("retrieval.stale_check_failed")

    # -- reading clauses ------------------------------------------------------------------------
    def _read_clauses(self, clause_ids: list[str]) -> dict[str, RetrievedClause]:
        if not clause_ids:
            return {}
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.RETRIEVAL_CLAUSES, clause_ids=clause_ids, database_=self._database, routing_="r"
            )
        return {
            r["clause_id"]: RetrievedClause(
                clause_id=r["clause_id"],
                version=r["version"],
                doc_id=r["doc_id"],
                doc_title=r["doc_title"],
                doc_version=r["doc_version"] or 1,
                number=r["number"] or "",
                text=r["text"] or "",
                section_path=list(r["section_path"] or []),
                page_start=r["page_start"] or 0,
                page_end=r["page_end"] or 0,
                score=0.0,
            )
            for r in records
        }


def _clauses_of(index: RetrievalIndex, units: list[int], limit: int) -> list[str]:
    """Unit hits -> clause ids, each clause at the rank of its best unit."""
    out: dict[str, None] = {}
    for u in units:
        out.setdefault(index.units[u].clause_id, None)
        if len(out) >= limit:
            break
    return list(out)
