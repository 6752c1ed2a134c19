"""Semantic similarity of an answer to its reference: cosine of sentence embeddings.

The encoder is loaded by an :data:`EncoderLoader` the composition root hands in: retrieval's
factory (``kgqa.wiring.build_encoder_loader``; offline, L2-normalized vectors, so the dot product
is the cosine), so ``training`` does not import ``serving``. Its default model is
bge-small-zh-v1.5 int8 (ONNX, fetched from Maven Central by ``kgqa models fetch bge-small-zh``
into ``$KGQA_HOME/models``); ``semantic_model`` in the eval config may name another kgqa model
folder or a sentence-transformers directory. Answers and references are both encoded as
passages (no query instruction): they are the same kind of text.

bge-small-zh reads Chinese; the all-MiniLM-L6-v2 used before this mapped most Chinese characters
to ``[UNK]``, so its similarities were weak and floored high (unrelated pairs 0.55-0.73).

Fallback, clearly logged: a configured path that is not a model directory -> a warning and the
default model; the default model missing too -> a warning and no semantic similarity (``None``
in the report, the composite renormalizes over the metrics it has).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import structlog

from kg.citations import strip_markers
from kgqa.errors import ConfigError

log = structlog.get_logger(__name__)


class Encoder(Protocol):
    """A sentence encoder: one L2-normalized row per text."""

    path: Path

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


#: ``load(model_path, batch_size)``: the encoder in a kgqa model folder or sentence-transformers
#: directory, or the default model (bge-small-zh-v1.5 int8 in ``$KGQA_HOME/models``) for None.
#: Raises ConfigError when it cannot.
EncoderLoader = Callable[[Path | None, int | None], Encoder]


class SemanticScorer:
    """Cosine similarity of marker-free texts under one sentence encoder.

    Args:
        model_path: a kgqa model folder or a sentence-transformers directory; ``None`` = the
            loader's default model.
        load_encoder: how to load it (``kgqa.wiring.build_encoder_loader``).
        batch_size: texts per forward pass; ``None`` = the encoder's default.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        load_encoder: EncoderLoader,
        batch_size: int | None = None,
    ) -> None:
        try:
            self._encoder = load_encoder(Path(model_path) if model_path else None, batch_size)
        except ConfigError:
            if model_path is None:
                raise
            log.warning("semantic_model_missing", path=str(model_path), fallback="bge-small-zh-v1.5")
            self._encoder = load_encoder(None, batch_size)
        self.model_path = str(self._encoder.path)

    @classmethod
    def try_build(
        cls,
        model_path: str | Path | None = None,
        *,
        load_encoder: EncoderLoader,
        batch_size: int | None = None,
    ) -> SemanticScorer | None:
        """The scorer, or None (with a warning) when no embedding model can be loaded."""
        try:
            return cls(model_path, load_encoder=load_encoder, batch_size=batch_size)
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


__all__ = ["Encoder", "EncoderLoader", "SemanticScorer"]
