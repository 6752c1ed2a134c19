"""The retrieval index: built from the graph, kept on disk, swapped atomically while serving.

Layout under ``$KGQA_HOME/index`` (or ``RetrievalConfig.index_dir``)::

    CURRENT                      name of the snapshot in use (replaced atomically)
    snapshots/<name>/meta.json   graph version it was built at, model, counts, tokenizer user words
    snapshots/<name>/units.json  indexed units (clauses and chunks of long clauses)
    snapshots/<name>/clauses.json the active clauses with provenance (what Ask returns, no graph read)
    snapshots/<name>/neighbours.json graph neighbours of each clause (for expansion)
    snapshots/<name>/bm25/       bm25s matrices + token lists
    snapshots/<name>/dense.faiss IndexIDMap2(IndexFlatIP), when dense retrieval is on
    embeddings/<model>.npz       vectors by text SHA-256 (survives snapshots)

A snapshot is immutable: a rebuild or update writes a new one, then ``CURRENT`` and the in-memory
reference are swapped. Readers holding the old :class:`RetrievalIndex` finish their query on it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import neo4j
import numpy as np
import structlog

from kg.snapshot import ChunkText, ClauseRecord, GraphSnapshot, read_snapshot
from kg.snapshot import graph_version as read_graph_version
from kgqa.errors import NotReady
from serving.retrieval.bm25 import Bm25Index
from serving.retrieval.config import RetrievalConfig
from serving.retrieval.coverage import TermCoverage
from serving.retrieval.dense import DenseIndex, EmbeddingCache
from serving.retrieval.direct import AliasTable, DirectResolver, StandardNames
from serving.retrieval.encoders import Encoder, load_encoder
from serving.retrieval.phrases import PhraseIndex
from serving.retrieval.quotes import QuoteIndex
from zhtext import Tokenizer, fold
from zhtext.background import background

log = structlog.get_logger(__name__)

FORMAT = 2


@dataclass(frozen=True)
class Unit:
    """One indexed text: a whole clause, or one chunk of a long clause (``chunk`` >= 0)."""

    clause_id: str
    doc_id: str
    number: str
    chunk: int
    text: str


@dataclass
class IndexReport:
    """What ``kgqa index rebuild|update --json`` prints."""

    graph_version: int
    documents: int
    clauses: int
    units: int
    embedded: int
    dense: bool
    seconds: float
    path: str


class RetrievalIndex:
    """One immutable snapshot: clauses, units, BM25, dense vectors, quotes, names and neighbours.

    Everything an Ask needs to choose its clauses is here, in memory: retrieval makes no Neo4j
    read (the answer's verification does, against the current graph).

    ``tokenizer`` is the one the snapshot's BM25 tokens were made with (the graph's defined terms
    as user words): questions must be cut the same way to meet them.
    """

    def __init__(
        self,
        units: list[Unit],
        clauses: list[ClauseRecord],
        documents: list[tuple[str, str]],
        neighbours: dict[str, list[str]],
        bm25: Bm25Index,
        dense: DenseIndex | None,
        graph_version: int,
        built_at: str,
        model_key: str | None,
        tokenizer: Tokenizer,
    ) -> None:
        self.units = units
        self.clauses = {c.clause_id: c for c in clauses}
        self.headings = {c.clause_id: (c.doc_title + " " + " ".join(c.section_path)).lower() for c in clauses}
        """Each clause's document title and section path, lower-cased (the ``title_cover`` feature)."""
        self.documents = documents
        self.doc_titles = dict(documents)
        self.neighbours = neighbours
        self.bm25 = bm25
        self.dense = dense
        self.graph_version = graph_version
        self.built_at = built_at
        self.model_key = model_key
        self.tokenizer = tokenizer
        background()  # the domain feature's counts: loaded with the index, not in the first Ask
        self.clause_docs = {u.clause_id: u.doc_id for u in units}
        self._clauses_by_doc: dict[str, list[str]] = {}
        for cid, doc in self.clause_docs.items():
            self._clauses_by_doc.setdefault(doc, []).append(cid)
        self._clause_position = {cid: k for k, cid in enumerate(self.clause_docs)}  # unit order
        self._unit_clause = np.asarray([self._clause_position[u.clause_id] for u in units], dtype=np.int64)
        self.quotes = QuoteIndex([u.text for u in units])
        self.normalized = [fold(u.text) for u in units]
        """Each unit's text as questions are compared with it (``zhtext.fold``)."""
        whole = [i for i, u in enumerate(units) if u.chunk < 0]  # clauses, not their chunks
        self._coverage = TermCoverage([bm25.unit_terms(i) for i in range(len(units))], self.normalized)
        self.phrases = PhraseIndex([self.normalized[i] for i in whole], whole)
        """The full-text ranking over whole clauses (positions are unit ids)."""
        self.vectors: np.ndarray | None = dense.vectors() if dense is not None else None
        self.direct = DirectResolver(
            AliasTable(documents),
            DirectResolver.article_map((u.clause_id, u.doc_id, u.number) for u in units if u.chunk < 0),
            StandardNames(documents),
        )
        # term -> document -> occurrences (chunks excluded: they repeat their clause's words)
        self._term_docs: dict[str, dict[str, int]] = {}
        for i, u in enumerate(units):
            if u.chunk >= 0:
                continue
            for tok in bm25.unit_tokens(i):
                per_doc = self._term_docs.setdefault(tok, {})
                per_doc[u.doc_id] = per_doc.get(u.doc_id, 0) + 1
        self._doc_totals: dict[str, int] = {}
        for per_doc in self._term_docs.values():
            for doc, n in per_doc.items():
                self._doc_totals[doc] = self._doc_totals.get(doc, 0) + n
        self._total_terms = sum(self._doc_totals.values())

    def clauses_of(self, doc_id: str) -> list[str]:
        """The document's clause ids, in document order."""
        return self._clauses_by_doc.get(doc_id, [])

    def best_per_clause(self, unit_values: np.ndarray) -> ClauseValues:
        """Each clause's largest value over its units (``unit_values`` in unit order): a clause
        is as close to a question as its closest chunk. Vectorized, and read by clause id without
        a dict of every clause: it runs on every question, which reads a few dozen of them."""
        best = np.full(len(self._clause_position), -np.inf)
        np.maximum.at(best, self._unit_clause, unit_values)
        return ClauseValues(self._clause_position, best)

    def coverage(self, weights: Mapping[str, float]) -> ClauseValues:
        """Each clause's coverage of weighted query terms (``Bm25Index.weights``) in its best unit:
        the IDF-weighted share of the terms it holds as words or inside longer words
        (serving/retrieval/coverage.py), for every clause at once."""
        return self.best_per_clause(self._coverage.units(weights))

    def term_docs(self, term: str) -> set[str]:
        """Documents that use ``term`` as a word."""
        return set(self._term_docs.get(term, ()))

    def logprob(self, term: str, exclude: set[str] | frozenset[str] = frozenset()) -> float:
        """log P(term) in the indexed clauses (add-half smoothed unigram), without ``exclude``'s documents."""
        per_doc = self._term_docs.get(term, {})
        count = sum(n for d, n in per_doc.items() if d not in exclude)
        total = self._total_terms - sum(self._doc_totals.get(d, 0) for d in exclude)
        return math.log((count + 0.5) / max(1, total))

    @property
    def clause_count(self) -> int:
        return len(self.clause_docs)


class ClauseValues(Mapping[str, float]):
    """One value per clause of a snapshot, kept as an array and read by clause id."""

    def __init__(self, position: Mapping[str, int], values: np.ndarray) -> None:
        self._position = position
        self._values = values

    def __getitem__(self, clause_id: str) -> float:
        return float(self._values[self._position[clause_id]])

    def __iter__(self) -> Iterator[str]:
        return iter(self._position)

    def __len__(self) -> int:
        return len(self._position)


def units_of(clauses: list[ClauseRecord]) -> list[Unit]:
    """The indexed units: each clause whole, and each chunk of a long clause on its own."""
    units: list[Unit] = []
    for c in clauses:
        units.append(Unit(c.clause_id, c.doc_id, c.number, -1, unit_text(c.doc_title, c.number, c.text)))
        units.extend(
            Unit(c.clause_id, c.doc_id, c.number, k.ord, unit_text(c.doc_title, c.number, k.text))
            for k in c.chunks
        )
    return units


def unit_text(doc_title: str, number: str, text: str) -> str:
    """The indexed text: title and number first, so 《建筑法》第二十二条-style words match."""
    return f"{doc_title} {number}\n{text}"


def embed_text(unit: Unit, limit: int) -> str:
    return unit.text[:limit]


class IndexStore:
    """Builds, persists, loads and refreshes the retrieval index of one graph.

    Args:
        home: ``$KGQA_HOME``; the index lives in ``home / "index"`` unless the config says
            otherwise, the default embedding model in ``home / "models"``.
        driver: an open ``neo4j.Driver``.
        config: retrieval settings (dense on/off, model, index dir).
        database: Neo4j database; ``None`` = the server default.
        encoder: an already loaded encoder to share (tests, benchmarks); built lazily otherwise.
    """

    def __init__(
        self,
        home: Path,
        driver: neo4j.Driver,
        config: RetrievalConfig | None = None,
        database: str | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        self.config = config or RetrievalConfig()
        self.dir = Path(self.config.index_dir or Path(home) / "index")
        self.models_dir = Path(home) / "models"
        self._driver = driver
        self._database = database
        self._encoder = encoder
        self._encoder_lock = threading.Lock()
        self._tokenizer: tuple[tuple[str, ...], Tokenizer] | None = None  # the last one made, by its terms
        self._index: RetrievalIndex | None = None
        self._swap_lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._last_check = 0.0
        self._updater: threading.Thread | None = None

    # -- reading ------------------------------------------------------------------------------
    def current(self) -> RetrievalIndex:
        """The snapshot to query now, loaded (or built) on first use.

        A service that started while Neo4j was down has no index yet; the first query after
        Neo4j is back loads it, so the service recovers without a restart.
        """
        with self._swap_lock:
            index = self._index
        if index is None:
            self.load()  # concurrent first queries serialize on the build lock inside
            with self._swap_lock:
                index = self._index
        if index is None:
            raise NotReady("the retrieval index is not loaded yet; run `kgqa index rebuild`")
        return index

    @property
    def encoder(self) -> Encoder:
        """The one encoder of this store, loaded on first use (request threads then share it)."""
        with self._encoder_lock:  # concurrent first queries must not load the model twice
            if self._encoder is None:
                self._encoder = load_encoder(
                    self.config.embedding_model,
                    models_dir=self.models_dir,
                    threads=self.config.embedding_threads,
                    batch_size=self.config.embedding_batch_size,
                    progress=self.config.progress,
                )
        return self._encoder

    def _tokenizer_for(self, user_words: list[str]) -> Tokenizer:
        """A tokenizer with the graph's defined terms as user words; reused while they are unchanged."""
        key = tuple(sorted(set(user_words)))
        last = self._tokenizer
        if last is not None and last[0] == key:
            return last[1]
        tokenizer = Tokenizer(key)
        self._tokenizer = (key, tokenizer)
        return tokenizer

    def graph_version(self) -> int:
        return read_graph_version(self._driver, self._database)

    # -- lifecycle ----------------------------------------------------------------------------
    def rebuild(self) -> IndexReport:
        """Everything from the graph, every text embedded afresh (the cache is discarded)."""
        return self._build(fresh=True)

    def update(self) -> IndexReport:
        """After an ingestion: re-read the graph, embed only new or changed texts, rebuild BM25."""
        return self._build(fresh=False)

    def load(self) -> RetrievalIndex:
        """The persisted snapshot at service start; built when missing, updated when stale.

        A stale index (built at an older graph version) still works, so it is loaded first and
        then updated: the warning tells operators that ingestion ran without an index update.
        """
        loaded = self._read_current()
        if loaded is None:
            log.info("retrieval.index_missing", path=str(self.dir))
            self.update()
            return self._index
        self._swap(loaded)
        version = self.graph_version()
        wrong_model = self.config.dense_enabled and (
            loaded.dense is None or loaded.model_key != self.encoder.model_key
        )
        if loaded.graph_version != version or wrong_model:
            log.warning(
                "retrieval.index_stale",
                index_version=loaded.graph_version,
                graph_version=version,
                model_changed=wrong_model,
                action="updating",
            )
            self.update()
        return self._index

    def refresh_if_stale(self, *, background: bool = True) -> bool:
        """Start an update when the graph moved since the snapshot was built.

        Checked at most every ``config.stale_check_s`` seconds; the update runs in a background
        thread unless ``background`` is False, and queries keep using the old snapshot meanwhile.

        Returns:
            True when an update was started (or run).
        """
        interval = self.config.stale_check_s
        now = time.monotonic()
        if interval <= 0 or now - self._last_check < interval:
            return False
        self._last_check = now
        index = self._index
        if index is None or self.graph_version() == index.graph_version:
            return False
        if self._updater is not None and self._updater.is_alive():
            return False
        if not background:
            self.update()
            return True
        self._updater = threading.Thread(target=self._update_quietly, name="kgqa-index-update", daemon=True)
        self._updater.start()
        return True

    def _update_quietly(self) -> None:
        try:
            self.update()
        except Exception:  # a failed background update must not kill serving; the old index stays
            log.exception("retrieval.index_update_failed")

    # -- building -----------------------------------------------------------------------------
    def _read_graph(self) -> GraphSnapshot:
        return read_snapshot(
            self._driver,
            self._database,
            max_entity_clauses=self.config.expand_max_entity_clauses,
        )

    def _build(self, *, fresh: bool) -> IndexReport:
        with self._build_lock:
            t0 = time.perf_counter()
            snapshot = self._read_graph()
            units = units_of(snapshot.clauses)
            tokenizer = self._tokenizer_for(snapshot.terms)
            tokens = [tokenizer.tokens(u.text) for u in units]
            bm25 = Bm25Index(tokens)
            dense, model_key, embedded = None, None, 0
            if self.config.dense_enabled:
                encoder = self.encoder
                cache_path = self.dir / "embeddings" / f"{encoder.model_key}.npz"
                if fresh and cache_path.exists():
                    cache_path.unlink()
                cache = EmbeddingCache(cache_path, encoder.dim)
                before = encoder.texts_encoded
                texts = [embed_text(u, self.config.embed_chars) for u in units]
                vectors = cache.embed(texts, encoder)
                embedded = encoder.texts_encoded - before
                cache.retain(texts)
                cache.save()
                dense = DenseIndex.build(vectors, list(range(len(units))))
                model_key = encoder.model_key
            built_at = datetime.now(UTC).isoformat(timespec="seconds")
            index = RetrievalIndex(
                units,
                snapshot.clauses,
                snapshot.documents,
                snapshot.neighbours,
                bm25,
                dense,
                snapshot.graph_version,
                built_at,
                model_key,
                tokenizer,
            )
            path = self._persist(index, model_key)
            self._swap(index)
            report = IndexReport(
                graph_version=snapshot.graph_version,
                documents=len(snapshot.documents),
                clauses=index.clause_count,
                units=len(units),
                embedded=embedded,
                dense=dense is not None,
                seconds=round(time.perf_counter() - t0, 3),
                path=str(path),
            )
            log.info("retrieval.index_built", **asdict(report), fresh=fresh)
            return report

    def _swap(self, index: RetrievalIndex) -> None:
        with self._swap_lock:
            self._index = index

    # -- persistence --------------------------------------------------------------------------
    def _persist(self, index: RetrievalIndex, model_key: str | None) -> Path:
        snapshots = self.dir / "snapshots"
        name = f"v{index.graph_version}-{uuid.uuid4().hex[:8]}"
        tmp = snapshots / f".{name}.tmp"
        tmp.mkdir(parents=True)
        meta = {
            "format": FORMAT,
            "graph_version": index.graph_version,
            "built_at": index.built_at,
            "model_key": model_key,
            "model_path": str(self.encoder.path) if model_key else None,
            "documents": index.documents,
            "units": len(index.units),
            "user_words": list(index.tokenizer.user_words),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        (tmp / "units.json").write_text(
            json.dumps([asdict(u) for u in index.units], ensure_ascii=False), encoding="utf-8"
        )
        (tmp / "clauses.json").write_text(
            json.dumps([asdict(c) for c in index.clauses.values()], ensure_ascii=False), encoding="utf-8"
        )
        (tmp / "neighbours.json").write_text(
            json.dumps(index.neighbours, ensure_ascii=False), encoding="utf-8"
        )
        index.bm25.save(tmp / "bm25")
        if index.dense is not None:
            index.dense.save(tmp / "dense.faiss")
        final = snapshots / name
        os.replace(tmp, final)
        pointer = self.dir / f".CURRENT.{uuid.uuid4().hex[:8]}"
        pointer.write_text(name, encoding="utf-8")
        os.replace(pointer, self.dir / "CURRENT")
        for old in snapshots.iterdir():  # other processes load through CURRENT; old dirs are garbage
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def _read_current(self) -> RetrievalIndex | None:
        if not (self.dir / "CURRENT").is_file():
            return None
        try:
            path, meta = _current_snapshot(self.dir)
            if meta.get("format") != FORMAT:
                log.warning("retrieval.index_format_changed", path=str(path), action="rebuilding")
                return None
            units = [Unit(**u) for u in json.loads((path / "units.json").read_text(encoding="utf-8"))]
            clauses = [
                _clause_record(c) for c in json.loads((path / "clauses.json").read_text(encoding="utf-8"))
            ]
            neighbours = json.loads((path / "neighbours.json").read_text(encoding="utf-8"))
            bm25 = Bm25Index.load(path / "bm25")
            dense_path = path / "dense.faiss"
            dense = DenseIndex.load(dense_path) if dense_path.is_file() else None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("retrieval.index_unreadable", path=str(path), error=str(exc), action="rebuilding")
            return None
        documents = [(d[0], d[1]) for d in meta["documents"]]
        return RetrievalIndex(
            units,
            clauses,
            documents,
            neighbours,
            bm25,
            dense,
            int(meta["graph_version"]),
            meta["built_at"],
            meta["model_key"],
            self._tokenizer_for(meta.get("user_words", [])),  # absent before user words: none were used
        )


def _current_snapshot(index_dir: Path) -> tuple[Path, dict]:
    """The snapshot ``CURRENT`` names under ``index_dir`` and its ``meta.json``.

    Raises:
        OSError, ValueError: no pointer, or a snapshot that cannot be read.
    """
    name = (Path(index_dir) / "CURRENT").read_text(encoding="utf-8").strip()
    path = Path(index_dir) / "snapshots" / name
    return path, json.loads((path / "meta.json").read_text(encoding="utf-8"))


def persisted_graph_version(index_dir: Path) -> int | None:
    """The graph version of the index snapshot in use under ``index_dir`` (``CURRENT``), read
    without loading it; None when there is none. Serving processes persist every update, so this
    says whether the index has caught up with an edit (``kgqa kg impact``)."""
    try:
        return int(_current_snapshot(index_dir)[1]["graph_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _clause_record(data: dict) -> ClauseRecord:
    return ClauseRecord(
        **{
            **data,
            "section_path": tuple(data.get("section_path") or ()),
            "chunks": tuple(ChunkText(**k) for k in data.get("chunks") or ()),
        }
    )
