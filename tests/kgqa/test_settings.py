"""Settings: one default per knob (the package's), nested sections, renamed names refused."""

from __future__ import annotations

import dataclasses
import os

import pytest

from ingest.config import IngestConfig
from kg.llm_endpoint import LlmEndpoint
from kgqa.errors import ConfigError
from kgqa.settings import Settings
from serving.backends import BackendConfig
from serving.retrieval.config import RetrievalConfig


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path, monkeypatch):
    """No kgqa.toml of the checkout and no KGQA_* of the caller's shell leak in."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("KGQA_") and name not in ("KGQA_HOME", "KGQA_SHARED_DIR"):
            monkeypatch.delenv(name)


def _names(cls) -> set[str]:
    if dataclasses.is_dataclass(cls):
        names = set()
        for f in dataclasses.fields(cls):
            names.add(f.name)
            if isinstance(f.type, type) and dataclasses.is_dataclass(f.type):
                names |= _names(f.type)
        return names
    return set(cls.model_fields)


def test_the_defaults_are_the_packages_own():
    settings = Settings()
    assert settings.ingest == IngestConfig()
    assert settings.retrieval == RetrievalConfig()
    assert settings.backend == BackendConfig()
    assert settings.llm == LlmEndpoint()


def test_no_flat_copy_of_a_package_setting():
    nested = {
        "ingest": IngestConfig,
        "retrieval": RetrievalConfig,
        "backend": BackendConfig,
        "llm": LlmEndpoint,
    }
    for section, cls in nested.items():
        for name in _names(cls):
            for flat in (name, f"{section}_{name}"):
                assert flat not in Settings.model_fields, f"Settings.{flat} duplicates {cls.__name__}.{name}"


def test_nested_environment_variables(monkeypatch):
    monkeypatch.setenv("KGQA_RETRIEVAL__DEPTH", "30")
    monkeypatch.setenv("KGQA_RETRIEVAL__WEIGHTS", '{"dense": 0.3}')
    monkeypatch.setenv("KGQA_INGEST__CHUNK__TARGET_CHARS", "300")
    monkeypatch.setenv("KGQA_INGEST__LIMITS__MAX_FILE_BYTES", "500MiB")
    monkeypatch.setenv("KGQA_INGEST__REDACT__EXTRA_PATTERNS", '{"员工编号": "EMP-\\\\d{6}"}')
    monkeypatch.setenv("KGQA_BACKEND__KIND", "vllm")
    monkeypatch.setenv("KGQA_BACKEND__TENSOR_PARALLEL_SIZE", "2")
    monkeypatch.setenv("KGQA_BACKEND__GPU_MEMORY_UTILIZATION", "0.5")
    monkeypatch.setenv("KGQA_LLM__BASE_URL", "http://127.0.0.1:8000/v1/")
    monkeypatch.setenv("KGQA_LLM__MODEL", "qwen")
    settings = Settings(backend={"max_new_tokens": 64})  # arguments and variables merge
    assert settings.retrieval.depth == 30 and settings.retrieval.rrf_k == RetrievalConfig().rrf_k
    assert settings.retrieval.weights == {
        **RetrievalConfig().weights,
        "dense": 0.3,
    }  # merged over the defaults
    assert settings.ingest.chunk.target_chars == 300 and settings.ingest.chunk.max_chars == 800
    assert settings.ingest.limits.max_file_bytes == 500 * 1024 * 1024
    assert settings.ingest.redact.extra_patterns == {"员工编号": "EMP-\\d{6}"}
    backend = settings.backend
    assert (backend.kind, backend.tensor_parallel_size, backend.gpu_memory_utilization) == ("vllm", 2, 0.5)
    assert backend.max_new_tokens == 64
    assert settings.llm.base_url == "http://127.0.0.1:8000/v1" and settings.llm.configured


def test_kgqa_toml_tables_and_the_environment_winning(tmp_path, monkeypatch):
    (tmp_path / "kgqa.toml").write_text(
        '[retrieval]\ndepth = 7\nrefuse = false\n\n[ingest.chunk]\ntarget_chars = 250\n\n[llm]\nmodel = "m"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("KGQA_RETRIEVAL__DEPTH", "9")
    settings = Settings()
    assert (settings.retrieval.depth, settings.retrieval.refuse) == (9, False)
    assert settings.ingest.chunk.target_chars == 250 and settings.llm.model == "m"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("KGQA_ANSWER_BACKEND", "KGQA_BACKEND__KIND"),
        ("KGQA_RETRIEVAL_MODEL_PATH", "KGQA_RETRIEVAL__MODEL_PATH"),
        ("KGQA_CHUNK_TARGET_CHARS", "KGQA_INGEST__CHUNK__TARGET_CHARS"),
        ("KGQA_OPENAI_BASE_URL", "KGQA_LLM__BASE_URL"),
        ("KGQA_LLM_API_KEY", "KGQA_LLM__API_KEY"),
    ],
)
def test_a_renamed_variable_is_refused_with_its_new_name(monkeypatch, old, new):
    monkeypatch.setenv(old, "x")
    with pytest.raises(ConfigError, match=f"{old} is now {new}"):
        Settings()


def test_a_renamed_argument_or_toml_key_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="KGQA_MAX_NEW_TOKENS is now KGQA_BACKEND__MAX_NEW_TOKENS"):
        Settings(max_new_tokens=8)
    (tmp_path / "kgqa.toml").write_text("retrieval_depth = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="KGQA_RETRIEVAL_DEPTH is now KGQA_RETRIEVAL__DEPTH"):
        Settings()


def test_one_endpoint_reaches_triple_extraction_and_the_openai_backend(monkeypatch):
    from kg.llm_extract import LlmTripleExtractor
    from kgqa.wiring import build_backend

    monkeypatch.setenv("KGQA_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("KGQA_LLM__MODEL", "teacher")
    settings = Settings(backend={"kind": "openai"})
    assert build_backend(settings).model_id == "teacher"
    LlmTripleExtractor(settings.llm)  # builds from the same endpoint (no request is made)
    with pytest.raises(ConfigError, match="KGQA_LLM__BASE_URL and KGQA_LLM__MODEL"):
        LlmTripleExtractor(LlmEndpoint())


def test_the_audit_linger_is_bounded_and_reaches_the_writer():
    """A negative linger is refused by the settings and by the writer itself; the one set is the
    one the server's writer uses (no Neo4j needed: a graph-mode writer opens nothing)."""
    from pydantic import ValidationError

    from kg.audit import AuditStore
    from kg.audit_writer import AuditWriter
    from kgqa.wiring import build_audit_writer

    assert Settings().audit_linger_s == 0.2
    with pytest.raises(ValidationError, match="audit_linger_s"):
        Settings(audit_linger_s=-1)
    with pytest.raises(ValueError, match="linger_s"):
        AuditWriter(AuditStore(None), None, linger_s=-1)  # type: ignore[arg-type]
    writer = build_audit_writer(Settings(audit_linger_s=0.7, audit_journal=False), None)
    assert writer._linger_s == 0.7
    writer.close()
