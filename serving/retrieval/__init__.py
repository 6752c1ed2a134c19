"""Retrieval over the clause graph: hybrid (BM25 + dense + full-text + direct references + graph).

Build an :class:`IndexStore` (``load()`` at service start, ``update()`` after an ingestion) and
hand it to :class:`HybridRetriever`, which implements ``retrieve(question, k)``.
"""

from serving.retrieval.config import RETRIEVERS, RetrievalConfig
from serving.retrieval.encoders import Encoder, load_encoder
from serving.retrieval.fulltext import FulltextRetriever
from serving.retrieval.fusion import Fused, weighted_rrf
from serving.retrieval.hybrid import HybridRetriever, Rankings
from serving.retrieval.index import IndexReport, IndexStore, RetrievalIndex

__all__ = [
    "RETRIEVERS",
    "Encoder",
    "Fused",
    "FulltextRetriever",
    "HybridRetriever",
    "IndexReport",
    "IndexStore",
    "Rankings",
    "RetrievalConfig",
    "RetrievalIndex",
    "load_encoder",
    "weighted_rrf",
]
