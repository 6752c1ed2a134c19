"""Retrieval over the clause graph: a first stage of many rankings, fused, then a learned rerank.

Build an :class:`IndexStore` (``load()`` at service start, ``update()`` after an ingestion), load
the :class:`RetrievalModel` (``load_model``) and hand both to :class:`HybridRetriever`, which
implements ``retrieve(question, k)``.
"""

from serving.retrieval.config import RETRIEVERS, RetrievalConfig
from serving.retrieval.encoders import Encoder, load_encoder
from serving.retrieval.fusion import Fused, weighted_rrf
from serving.retrieval.hybrid import Candidate, HybridRetriever, Rankings
from serving.retrieval.index import IndexReport, IndexStore, RetrievalIndex
from serving.retrieval.question import Question, parse_question
from serving.retrieval.rerank import PACKAGED_MODEL, LinearModel, RetrievalModel, load_model, model_path

__all__ = [
    "PACKAGED_MODEL",
    "RETRIEVERS",
    "Candidate",
    "Encoder",
    "Fused",
    "HybridRetriever",
    "IndexReport",
    "IndexStore",
    "LinearModel",
    "Question",
    "Rankings",
    "RetrievalConfig",
    "RetrievalIndex",
    "RetrievalModel",
    "load_model",
    "model_path",
    "parse_question",
    "load_encoder",
    "weighted_rrf",
]
