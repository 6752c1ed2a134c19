"""Session-wide fixtures: the shared corpus (read in place) and, for graph tests, a real Neo4j."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kg.local_server import free_port

#: Fixtures shared by test folders that have no conftest in common but this one.
pytest_plugins = ["retrain_world"]

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """Each test process gets its share of the cores for torch's (OpenMP's) threads.

    `make test` runs two processes on two cores, and torch gives each process a thread per core.
    Two processes then fight over both cores: the training loop's SFT ran at 1,421 tokens/s with
    two threads beside a busy core against 2,650 with one (measured on this 2-core machine), and
    the loop's setup took 985 of the suite's 1,174 s. Set before torch is imported; a value the
    caller exported is kept. Child processes (``kgqa serve``, job workers) inherit it.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))


def _time_limit(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    return float(marker.args[0]) if marker and marker.args else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow files first, the one with the largest time limit first of all.

    `make test` spreads whole files over two processes (pytest-xdist, ``--dist loadfile
    --no-loadscope-reorder``) in this order: the real training loop started last would leave one
    process idle for its last minutes. xdist gives a process a second file while it has two tests
    or fewer of its first pending, so the loop's file keeps three tests: its process runs the
    loop alone while the other takes the rest. The sort is stable, so each file's tests keep their
    order and stay together.
    """
    items.sort(key=lambda item: (item.get_closest_marker("slow") is None, -_time_limit(item)))


def _shared_dir() -> Path:
    return Path(os.environ.get("KGQA_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The public test corpus in ../shared/corpus, never copied into the repository."""
    path = _shared_dir() / "corpus"
    if not path.is_dir():
        pytest.skip(f"shared corpus not found at {path} (set KGQA_SHARED_DIR); it is absent on user clones")
    return path


#: The two corpus files the tiny test tokenizer is trained on.
TINY_CORPUS = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, corpus_dir) -> Path:
    """A tiny random Qwen2 (ChatML template) with a tokenizer trained on two corpus files, built once."""
    from training.tiny_base import build_tiny_base

    out = tmp_path_factory.getbasetemp() / "tiny-qwen"
    if not (out / "model.safetensors").is_file():
        texts = [(corpus_dir / name).read_text(encoding="utf-8") for name in TINY_CORPUS]
        build_tiny_base(out, texts, seed=0, vocab_size=2000)
    return out


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """Our own fictional manuals, shipped in the repository."""
    return REPO / "samples"


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory):
    """A real Neo4j of our own (own data dir, free port), started once per test run and stopped after."""
    from kg.local_server import LocalNeo4j

    server = LocalNeo4j(tmp_path_factory.mktemp("neo4j"), free_port(), heap_mb=512, pagecache_mb=64)
    server.start(timeout=240)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_server):
    from neo4j import GraphDatabase

    with GraphDatabase.driver(neo4j_server.bolt_uri, auth=None) as driver:
        yield driver


@pytest.fixture
def clean_graph(neo4j_driver):
    """An empty graph. Safe only because the session server above belongs to this test run alone."""
    with neo4j_driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    return neo4j_driver


@pytest.fixture
def kgqa_env(neo4j_server, tmp_path, monkeypatch) -> dict[str, str]:
    """Environment for running the `kgqa` CLI against the test server with its own KGQA_HOME."""
    env = dict(os.environ)
    env.update({"KGQA_NEO4J_URI": neo4j_server.bolt_uri, "KGQA_HOME": str(tmp_path / "home")})
    return env


@pytest.fixture(scope="session")
def embedding_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh ``$KGQA_HOME/models`` holding the default embedding model (bge-small-zh int8).

    Extracted from the verified jar in the local Maven repository, where ``make install`` left it;
    nothing is downloaded. Without the jar this fails with the command to run.
    """
    from serving.retrieval.model_files import ensure_model

    models = tmp_path_factory.mktemp("models")
    ensure_model(models)
    return models


@pytest.fixture(scope="session")
def bge_encoder(embedding_models_dir: Path):
    """The default encoder (bge-small-zh-v1.5 int8 on onnxruntime), loaded once per test run."""
    from serving.retrieval.encoders import load_encoder

    return load_encoder(None, models_dir=embedding_models_dir)
