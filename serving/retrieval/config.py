"""The one surface that settings, the CLI and the benchmark fill in to shape hybrid retrieval."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kgqa.errors import ConfigError

RETRIEVERS = ("direct", "bm25", "dense", "fulltext", "graph", "doc")
"""Names of the rankings the fusion knows; they are also the keys of ``RetrievedClause.sources``."""


def _default_weights() -> dict[str, float]:
    return {"direct": 4.0, "bm25": 1.0, "fulltext": 1.0, "dense": 0.0, "graph": 0.1, "doc": 0.5}


@dataclass
class RetrievalConfig:
    """How questions become ranked clauses.

    The defaults are what ``bench/bench_retrieval.py`` measured on ``eval/questions.jsonl`` (76
    questions over the 12 Markdown laws and standards of the shared corpus; article-level hit@5):
    BM25 over jieba tokens alone 0.929, Neo4j full-text alone 0.857, the then-default
    all-MiniLM-L6-v2 alone 0.143 — MiniLM's English WordPiece vocabulary maps most Chinese
    characters to ``[UNK]``, so its vectors barely depend on the question, and adding it at weight
    0.3 lowered hit@1 (0.686 -> 0.671). Hence ``dense`` defaults to 0 and the encoder is not even
    loaded. The default model is now bge-small-zh-v1.5 (a Chinese model); give ``dense`` a weight
    after re-running the benchmark. ``eval/README.md`` has the table.

    Attributes:
        weights: fusion weight per ranking (``score = Σ w / (rrf_k + rank)``). ``direct``: the
            clauses a question names (《建筑法》第二十二条); ``bm25``; ``dense``; ``fulltext``: Neo4j's
            ``cjk`` full-text index; ``graph``: neighbours of the top hits (references, adjacent
            clauses, rare shared entities); ``doc``: candidates from a document the question names,
            ranked among themselves. A weight of 0 turns that ranking off.
        rrf_k: the RRF damping constant; larger values flatten the difference between ranks. The
            paper's 60 made rank 1 and rank 5 almost equal here, so that the low-weight graph
            ranking reordered the top (article hit@1 0.36 with graph 0.2); 10 keeps the top sharp.
        depth: candidates each retriever contributes to the fusion (before cutting to ``k``).
        direct_first: named clauses are returned ahead of everything fused, whatever the scores.
        expand_top: how many of the fused top hits seed the graph expansion.
        expand_max_entity_clauses: an entity mentioned by more active clauses than this is too
            common (企业, 合同) to make two clauses related.
        min_coverage: the least IDF-weighted share of the question's content words that one BM25
            or full-text candidate must contain; below it the question gets no contexts (the
            service answers NO_EVIDENCE). 0 disables the rule. Named clauses bypass it.
        min_matched_terms: that candidate must also contain at least this many distinct content
            words of the question (all of them when the question has fewer), so a single shared
            common word never counts as evidence.
        min_corpus_share: the least IDF-weighted share of the question's content words that
            occur anywhere in the indexed corpus; a question built around words the manuals never
            use (年终奖, 个人所得税) is about something they do not regulate.
        embedding_model: a kgqa model folder (``kgqa models fetch``) or a sentence-transformers
            directory; ``None`` = bge-small-zh-v1.5 int8 in ``$KGQA_HOME/models``, fetched from
            Maven Central by ``make install``. Never downloaded at run time.
        embedding_batch_size: texts per encoder batch; ``None`` = the encoder's default (1 for
            ONNX models, where larger batches measured slower on CPU; 32 for sentence-transformers).
        embedding_threads: onnxruntime intra-op threads per encoder call (ONNX models). Request
            threads share one session and run concurrently, so 1 thread each keeps a busy
            server from oversubscribing its cores; a lone index build gains from more.
        embed_chars: characters of a unit passed to the encoder (models truncate anyway).
        build_dense: build the dense index even when its weight is 0 (the benchmark measures it).
        index_dir: where the index lives; ``None`` = ``$KGQA_HOME/index``.
        stale_check_s: how often (seconds) a retriever compares the index's graph version with
            the graph's and starts a background update when the graph moved. 0 = never.
        progress: show progress bars while building.
    """

    weights: dict[str, float] = field(default_factory=_default_weights)
    rrf_k: int = 10
    depth: int = 50
    direct_first: bool = True
    expand_top: int = 3
    expand_max_entity_clauses: int = 6
    min_coverage: float = 0.55
    min_matched_terms: int = 2
    min_corpus_share: float = 0.5
    embedding_model: Path | None = None
    embedding_batch_size: int | None = None
    embedding_threads: int = 1
    embed_chars: int = 512
    build_dense: bool = False
    index_dir: Path | None = None
    stale_check_s: float = 30.0
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
