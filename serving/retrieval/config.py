"""The one surface that settings, the CLI and the benchmark fill in to shape hybrid retrieval.

``kgqa.settings`` nests :class:`RetrievalConfig` as ``Settings.retrieval``: every field is
settable as ``KGQA_RETRIEVAL__<FIELD>`` (``KGQA_RETRIEVAL__DEPTH=30``,
``KGQA_RETRIEVAL__WEIGHTS='{"dense": 0.3}'``) or in ``kgqa.toml``; the defaults here are the
only ones. A pydantic dataclass, so values are validated and converted when it is built.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path

from pydantic.dataclasses import dataclass

from kgqa.errors import ConfigError

RETRIEVERS = ("direct", "doc", "bm25", "bm25_ask", "dense", "fulltext", "quote", "graph")
"""Names of the first-stage rankings the fusion knows; also the keys of ``RetrievedClause.sources``."""


def _default_weights() -> dict[str, float]:
    return {
        "direct": 2.0,
        "doc": 1.0,
        "bm25": 1.0,
        "bm25_ask": 1.0,
        "dense": 1.0,
        "fulltext": 1.0,
        "quote": 1.0,
        "graph": 0.3,
    }


@dataclass
class RetrievalConfig:
    """How questions become ranked clauses.

    The first stage only has to bring the right clause into the pool the reranker sees (recall
    at ``rerank_depth``); the order is the reranker's. ``bench/bench_retrieval.py`` measures both
    on real consultation letters (../shared/eval/dev) and on ``eval/questions.jsonl``.

    Attributes:
        weights: fusion weight per first-stage ranking (``score = Σ w / (rrf_k + rank)``):
            ``direct`` the articles a question names; ``doc`` the best clauses of the documents
            it names; ``bm25`` over the whole letter's key terms; ``bm25_ask`` over the ask;
            ``dense`` bge-small-zh over the ask; ``fulltext`` the key terms as phrases of the clause
            text (phrases.py); ``quote`` clauses holding text the letter quotes; ``graph`` neighbours of the
            best hits. A weight of 0 turns that ranking off (dense and full-text are then not
            even computed).
        rrf_k: the RRF damping constant.
        depth: candidates each ranking contributes.
        rerank_depth: the size of the pool the reranker scores.
        max_query_terms: the most informative distinct terms of a long letter that the lexical
            rankings use (a 2,000-character letter has hundreds; the rest add noise and time).
        fulltext_terms: of those, how many the full-text ranking matches as phrases (an unseen
            term costs a scan of the snapshot's text for it and for each of its bigrams).
        dense_query_chars: characters of the ask the encoder reads.
        doc_clauses: clauses taken from each named document for the ``doc`` ranking.
        expand_top: how many of the fused top hits seed the graph neighbours.
        expand_max_entity_clauses: an entity mentioned by more active clauses than this is too
            common (企业, 合同) to make two clauses related.
        max_per_document: at most this many clauses of one document in the first
            ``diversify_top`` places when other documents have candidates (0 = no limit).
        diversify_top: how many places the per-document limit covers.
        refuse: apply the answerability model's threshold (False: always answer, for tests of
            ranking alone).
        model_path: a retrieval model JSON to serve with; ``None`` = the one ``kgqa index train``
            wrote under ``$KGQA_HOME/retrieval``, else the packaged one.
        embedding_model: a kgqa model folder (``kgqa models fetch``) or a sentence-transformers
            directory; ``None`` = bge-small-zh-v1.5 int8 in ``$KGQA_HOME/models``, fetched from
            Maven Central by ``make install``. Never downloaded at run time.
        embedding_batch_size: texts per encoder batch; ``None`` = the encoder's default (1 for
            ONNX models, where larger batches measured slower on CPU; 32 for sentence-transformers).
        embedding_threads: onnxruntime intra-op threads per encoder call (ONNX models). Request
            threads share one session and run concurrently, so 1 thread each keeps a busy
            server from oversubscribing its cores; a lone index build gains from more.
        embed_chars: characters of a unit passed to the encoder (models truncate anyway).
        build_dense: build the dense index even when its weight is 0.
        index_dir: where the index lives; ``None`` = ``$KGQA_HOME/index``.
        stale_check_s: how often (seconds) a retriever compares the index's graph version with
            the graph's and starts a background update when the graph moved. 0 = never.
        progress: show progress bars while building.
    """

    weights: dict[str, float] = field(default_factory=_default_weights)
    rrf_k: int = 10
    depth: int = 50
    rerank_depth: int = 50
    max_query_terms: int = 48
    fulltext_terms: int = 16
    dense_query_chars: int = 200
    doc_clauses: int = 10
    expand_top: int = 3
    expand_max_entity_clauses: int = 6
    max_per_document: int = 0
    diversify_top: int = 5
    refuse: bool = True
    model_path: Path | None = None
    embedding_model: Path | None = None
    embedding_batch_size: int | None = None
    embedding_threads: int = 1
    embed_chars: int = 512
    build_dense: bool = False
    index_dir: Path | None = None
    stale_check_s: float = 5.0
    progress: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(RETRIEVERS)
        if unknown:
            raise ConfigError(f"unknown retrievers in weights: {sorted(unknown)}; use some of {RETRIEVERS}")
        merged = _default_weights()
        merged.update(self.weights)
        self.weights = merged

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, 0.0))

    @property
    def dense_enabled(self) -> bool:
        """Whether the encoder is loaded and the FAISS index built."""
        return self.build_dense or self.weight("dense") > 0
