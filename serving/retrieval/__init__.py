"""Retrieval over the clause graph: a first stage of many rankings, fused, then a learned rerank.

Build an :class:`IndexStore` (``load()`` at service start, ``update()`` after an ingestion), load
the :class:`RetrievalModel` (``load_model``) and hand both to :class:`HybridRetriever`, which
implements ``retrieve(question, k)``.

The names below are imported on first use (PEP 562), so that reading :class:`RetrievalConfig`
(the settings do, at every CLI start) does not load the indexes' libraries.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.retrieval.config import RETRIEVERS, RetrievalConfig
    from serving.retrieval.encoders import Encoder, load_encoder
    from serving.retrieval.fusion import Fused, weighted_rrf
    from serving.retrieval.hybrid import Candidate, HybridRetriever, Rankings
    from serving.retrieval.index import IndexReport, IndexStore, RetrievalIndex
    from serving.retrieval.question import Question, parse_question
    from serving.retrieval.rerank import PACKAGED_MODEL, LinearModel, RetrievalModel, load_model, model_path

_EXPORTS = {
    "RETRIEVERS": "config",
    "RetrievalConfig": "config",
    "Encoder": "encoders",
    "load_encoder": "encoders",
    "Fused": "fusion",
    "weighted_rrf": "fusion",
    "Candidate": "hybrid",
    "HybridRetriever": "hybrid",
    "Rankings": "hybrid",
    "IndexReport": "index",
    "IndexStore": "index",
    "RetrievalIndex": "index",
    "Question": "question",
    "parse_question": "question",
    "PACKAGED_MODEL": "rerank",
    "LinearModel": "rerank",
    "RetrievalModel": "rerank",
    "load_model": "rerank",
    "model_path": "rerank",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


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
