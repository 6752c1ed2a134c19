"""Sentence encoders for dense retrieval and answer similarity, and the one factory that picks one.

Two kinds of model directory are understood:

- a kgqa model folder (``manifest.json`` + ``model.onnx`` + ``tokenizer.json``, written by
  ``kgqa models fetch``): run by :class:`OnnxEncoder` with onnxruntime and HF ``tokenizers``.
  The default, bge-small-zh-v1.5 int8, is one of these.
- a sentence-transformers directory (``modules.json`` or ``config.json``): run by
  :class:`SentenceTransformerEncoder`, for users who point ``embedding_model`` at their own model.

Every encoder returns L2-normalized float32 rows (the inner product is the cosine), encodes
passages with :meth:`encode` and questions with :meth:`encode_queries` (bge puts its retrieval
instruction before queries only), and has a ``model_key`` that changes when the model's bytes
change, which names the embedding cache so that a new model never reuses old vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import structlog

from kgqa.errors import ConfigError
from serving.retrieval.model_files import (
    DEFAULT_ARTIFACT,
    MANIFEST,
    ONNX_FILE,
    TOKENIZER_FILE,
    ensure_model,
    verify_model_dir,
)

log = structlog.get_logger(__name__)


class Encoder(Protocol):
    """What dense retrieval and the semantic-similarity metric need from a model."""

    path: Path
    dim: int
    model_key: str
    texts_encoded: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Passages: one normalized float32 row per text."""
        ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Questions: like :meth:`encode`, with the model's query instruction applied."""
        ...


class OnnxEncoder:
    """A BERT-style ONNX model (bge-small-zh) run with onnxruntime on CPU.

    One ``InferenceSession`` serves every thread: onnxruntime documents ``run`` as safe to call
    concurrently on one session, and the tokenizer is configured once here and only read
    afterwards, so request threads encode in parallel without a lock; only the
    ``texts_encoded`` counter is guarded.

    Args:
        path: a kgqa model folder (see :mod:`serving.retrieval.model_files`); its files are
            checked against the manifest's SHA-256s before loading.
        threads: onnxruntime intra-op threads per call. 1 suits a server answering many requests
            at once; the index build uses more (``RetrievalConfig.embedding_threads``).
        batch_size: texts per forward pass; each batch is padded to its longest text, and texts
            are sorted by length first so that batches waste little on padding. 1 by default:
            on 2 CPU cores, int8, one thread, clause-length texts took ~22 ms each in batches of
            1 or 4 and ~32 ms in batches of 16 or 32; and int8 activations are quantized per
            batch, so only batches of one give a text the same vector whatever it was encoded with.
        progress: show a tqdm bar while encoding many texts.
    """

    def __init__(self, path: Path, *, threads: int = 1, batch_size: int = 1, progress: bool = False) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer
        from tokenizers.normalizers import BertNormalizer

        self.path = Path(path)
        manifest = verify_model_dir(self.path)
        recipe = manifest.recipe
        if recipe.pooling not in ("cls", "mean"):
            raise ConfigError(f"{self.path / MANIFEST}: unknown pooling {recipe.pooling!r}; use cls or mean")
        self.recipe = recipe
        tokenizer = Tokenizer.from_file(str(self.path / TOKENIZER_FILE))
        if recipe.lowercase:
            tokenizer.normalizer = BertNormalizer(
                clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
            )
        tokenizer.enable_truncation(max_length=recipe.max_tokens)
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")  # BERT: id 0
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # onnxruntime's own warnings about unused initializers
        self._session = ort.InferenceSession(
            str(self.path / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._batch_size = batch_size
        self._progress = progress
        self.threads = threads
        self.dim = recipe.dim
        identity = json.dumps({"files": manifest.files, "recipe": recipe.__dict__}, sort_keys=True)
        self.model_key = hashlib.sha256(identity.encode()).hexdigest()[:12]
        self._count_lock = threading.Lock()
        self.texts_encoded = 0
        """How many texts went through the model since it was loaded (tests count re-embedding)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(list(texts))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        prefix = self.recipe.query_instruction
        return self._encode([prefix + t for t in texts])

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        starts = range(0, len(order), self._batch_size)
        if self._progress and len(texts) > self._batch_size:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        for start in starts:
            rows = order[start : start + self._batch_size]
            out[rows] = self._forward([texts[i] for i in rows])
        with self._count_lock:
            self.texts_encoded += len(texts)
        return out

    def _forward(self, batch: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(batch)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        (states,) = self._session.run(None, {k: v for k, v in feed.items() if k in self._inputs})
        if self.recipe.pooling == "cls":
            vectors = states[:, 0, :]
        else:
            weights = mask[:, :, None].astype(np.float32)
            vectors = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        vectors = vectors.astype(np.float32)
        if self.recipe.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors


class SentenceTransformerEncoder:
    """A local sentence-transformers model, loaded once; encoding is serialized (torch on CPU).

    Queries go through ``encode_query``, which applies the model's own ``query`` prompt when its
    config defines one.

    Args:
        path: a sentence-transformers directory.
        batch_size: texts per forward pass.
        progress: show a tqdm bar while encoding many texts.
    """

    def __init__(self, path: Path, *, batch_size: int = 32, progress: bool = False) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self.path = Path(path)
        self._model = SentenceTransformer(str(self.path), device="cpu", local_files_only=True)
        self._batch_size = batch_size
        self._progress = progress
        self._lock = threading.Lock()
        self.dim = int(self._model.get_embedding_dimension())
        self.model_key = _directory_key(self.path)
        self.texts_encoded = 0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(self._model.encode, texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._run(self._model.encode_query, texts)

    def _run(self, method, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = method(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=self._progress and len(texts) > self._batch_size,
            )
            self.texts_encoded += len(texts)
        return np.asarray(vectors, dtype=np.float32)


def _directory_key(path: Path) -> str:
    """Changes when any file of the model directory is replaced (name, size, modification time)."""
    h = hashlib.sha256(str(path.resolve()).encode())
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        h.update(f"{f.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def load_encoder(
    model: Path | None,
    *,
    models_dir: Path,
    threads: int = 1,
    batch_size: int | None = None,
    progress: bool = False,
    maven_repo: Path | None = None,
) -> Encoder:
    """The encoder for ``model``, chosen by what the directory holds.

    Args:
        model: a kgqa model folder or a sentence-transformers directory; ``None`` = the default
            bge-small-zh-v1.5 int8 under ``models_dir`` (extracted from the local Maven
            repository when only the jar is there; never downloaded).
        models_dir: ``$KGQA_HOME/models``.
        threads: onnxruntime intra-op threads (ONNX models only).
        batch_size: texts per forward pass; ``None`` = the encoder's default (ONNX 1,
            sentence-transformers 32).
        progress: progress bars while encoding many texts.
        maven_repo: local Maven repository; ``None`` = ``~/.m2/repository``.

    Raises:
        ConfigError: the directory is neither kind of model, or the default model is missing
            (the message says to run ``kgqa models fetch bge-small-zh``).
    """
    path = Path(model) if model is not None else ensure_model(models_dir, DEFAULT_ARTIFACT, maven_repo)
    if (path / MANIFEST).is_file():
        return OnnxEncoder(path, threads=threads, batch_size=batch_size or 1, progress=progress)
    if (path / "modules.json").is_file() or (path / "config.json").is_file():
        return SentenceTransformerEncoder(path, batch_size=batch_size or 32, progress=progress)
    raise ConfigError(
        f"{path} is not an embedding model directory: expected a kgqa model folder (manifest.json, "
        "from `kgqa models fetch`) or a sentence-transformers directory (modules.json)"
    )


__all__ = ["Encoder", "OnnxEncoder", "SentenceTransformerEncoder", "load_encoder"]
