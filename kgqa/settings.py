"""Settings: ``KGQA_*`` environment variables, optionally a ``kgqa.toml``; built once, passed down.

Nothing reads settings at import time; the CLI calls :func:`get_settings` and hands the pieces to
constructors (habit 4 of STYLE.md).

The composition root's own settings are flat (``KGQA_HOME``, ``KGQA_NEO4J_URI``, the server's
ports and limits). Each package's configuration is nested as it is, with its own defaults, so
there is one default per knob: ``ingest`` (:class:`ingest.config.IngestConfig`,
``KGQA_INGEST__CHUNK__TARGET_CHARS``), ``retrieval``
(:class:`serving.retrieval.config.RetrievalConfig`, ``KGQA_RETRIEVAL__DEPTH``), ``backend``
(:class:`serving.backends.BackendConfig`, ``KGQA_BACKEND__KIND``, ``console``
(:class:`serving.console.config.ConsoleConfig`, ``KGQA_CONSOLE__SESSION_TTL_S``),
``KGQA_BACKEND__TENSOR_PARALLEL_SIZE``) and ``llm``, the one OpenAI-compatible endpoint that
triple extraction, dataset generation and the ``openai`` backend share
(:class:`kg.llm_endpoint.LlmEndpoint`, ``KGQA_LLM__BASE_URL``). In ``kgqa.toml`` they are tables
(``[retrieval]``, ``[ingest.chunk]``).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ingest.config import IngestConfig
from kg.llm_endpoint import LlmEndpoint
from kgqa.errors import ConfigError
from serving.backends.base import BackendConfig
from serving.console.config import ConsoleConfig
from serving.retrieval.config import RetrievalConfig

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Flat settings of earlier releases and the nested ones that replaced them. They are refused with
#: their new name, in the environment, in ``kgqa.toml`` and as arguments, rather than ignored.
RENAMED: dict[str, str] = {
    "ocr_backend": "ingest__ocr__backend",
    "ocr_dpi": "ingest__ocr__dpi",
    "ocr_min_text_chars": "ingest__ocr__min_text_chars",
    "chunk_target_chars": "ingest__chunk__target_chars",
    "chunk_min_chars": "ingest__chunk__min_chars",
    "chunk_max_chars": "ingest__chunk__max_chars",
    "redact_extra_patterns": "ingest__redact__extra_patterns",
    "max_file_mb": "ingest__limits__max_file_bytes",
    "max_pages": "ingest__limits__max_pages",
    "max_docx_xml_mb": "ingest__limits__max_docx_xml_bytes",
    "max_page_pixels": "ingest__limits__max_page_pixels",
    "parse_timeout_s": "ingest__limits__parse_timeout_s",
    "parse_memory_mb": "ingest__limits__parse_memory_mb",
    "ocr_page_budget_s": "ingest__limits__ocr_page_budget_s",
    "ocr_file_budget_s": "ingest__limits__ocr_file_budget_s",
    "llm_base_url": "llm__base_url",
    "llm_model": "llm__model",
    "llm_api_key": "llm__api_key",
    "openai_base_url": "llm__base_url",
    "openai_model": "llm__model",
    "openai_api_key": "llm__api_key",
    "answer_backend": "backend__kind",
    "model_path": "backend__model_path",
    "adapter_path": "backend__adapter_path",
    "max_new_tokens": "backend__max_new_tokens",
    "no_repeat_ngram": "backend__no_repeat_ngram",
    "retrieval_embedding_model": "retrieval__embedding_model",
    "retrieval_embedding_threads": "retrieval__embedding_threads",
    "retrieval_index_dir": "retrieval__index_dir",
    "retrieval_weights": "retrieval__weights",
    "retrieval_rrf_k": "retrieval__rrf_k",
    "retrieval_depth": "retrieval__depth",
    "retrieval_model_path": "retrieval__model_path",
    "retrieval_refuse": "retrieval__refuse",
    "retrieval_stale_check_s": "retrieval__stale_check_s",
    "console_session_ttl_s": "console__session_ttl_s",
    "console_idle_timeout_s": "console__idle_timeout_s",
    "console_secret_key": "console__secret_key",
    "console_cookie_secure": "console__cookie_secure",
}


def _env_name(name: str) -> str:
    return "KGQA_" + name.upper()


class Settings(BaseSettings):
    """All of kgqa's settings. Environment variables win over ``kgqa.toml``."""

    model_config = SettingsConfigDict(
        env_prefix="KGQA_", env_nested_delimiter="__", toml_file="kgqa.toml", extra="ignore"
    )

    home: Path = Field(default=REPO_ROOT / ".kgqa", description="Everything kgqa keeps outside Neo4j.")
    neo4j_uri: str = Field(default="bolt://127.0.0.1:7687", description="bolt:// or neo4j:// (cluster) URI.")
    neo4j_user: str | None = Field(default=None, description="None for the local auth-less dev server.")
    neo4j_password: str | None = None
    neo4j_database: str | None = Field(default=None, description="None = the server's default database.")
    neo4j_heap_mb: int = 768
    neo4j_pagecache_mb: int = 128

    # --- the packages' own configurations (KGQA_<SECTION>__<FIELD>) ---
    ingest: IngestConfig = Field(
        default_factory=IngestConfig, description="Parsing, OCR, cleaning, redaction, chunking, limits."
    )
    retrieval: RetrievalConfig = Field(
        default_factory=RetrievalConfig, description="Hybrid retrieval (rankings, fusion, rerank, index)."
    )
    backend: BackendConfig = Field(
        default_factory=BackendConfig, description="The answer backend (kind, model, adapter, vLLM knobs)."
    )
    console: ConsoleConfig = Field(
        default_factory=ConsoleConfig, description="The web console (/console): sessions, cookies, pages."
    )
    llm: LlmEndpoint = Field(
        default_factory=LlmEndpoint,
        description="The OpenAI-compatible endpoint of triple extraction, dataset generation and the openai backend.",
    )

    llm_triples: bool = Field(default=False, description="Also extract triples with the KGQA_LLM__ endpoint.")

    retrain_config: Path | None = Field(
        default=None,
        description="The config of `kgqa retrain` and retrain jobs (None: training/configs/retrain.yaml).",
    )
    retrain_trigger_changes: int | None = Field(
        default=None, ge=1, description="kgqa serve retrains once this many clauses changed (None: off)."
    )
    retrain_trigger_minutes: float | None = Field(
        default=None, gt=0, description="... or this long after the first change it saw (None: off)."
    )

    # --- serving ---
    model_sync_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between polls of the model registry for the active model."
    )
    verify_policy: Literal["strict", "flag"] = "strict"
    default_k: int = 5
    max_k: int = 20
    max_question_chars: int = 2000
    api_keys: str | None = Field(default=None, description='"key1=reader,key2=auditor"')
    api_keys_file: Path | None = Field(default=None, description="File of key=role lines.")
    grpc_port: int = 50051
    http_port: int = 8000
    host: str = "127.0.0.1"
    grpc_max_workers: int = 16
    grpc_max_concurrent_rpcs: int = 64
    shutdown_grace_s: float = 10.0
    request_deadline_s: float = Field(
        default=5.0,
        gt=0,
        description="Time one request may spend reaching Neo4j, retries included; then 503 UNAVAILABLE.",
    )
    breaker_probe_interval_s: float = Field(
        default=2.0, gt=0, description="While Neo4j is known to be down, seconds between background probes."
    )
    health_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between the background readiness checks of the graph."
    )
    max_request_bytes: int = Field(
        default=256 * 1024, gt=0, description="Largest request body (HTTP) or message (gRPC) accepted."
    )
    http_max_concurrent_requests: int | None = Field(
        default=None,
        gt=0,
        description="API requests (/v1) one process serves at once; more get 429. None = KGQA_GRPC_MAX_CONCURRENT_RPCS.",
    )
    workers: int = Field(
        default=1,
        ge=1,
        description="Server processes sharing the gRPC and HTTP ports (kgqa serve --workers).",
    )
    native_threads: int = Field(
        default=1,
        ge=0,
        description="BLAS threads per serving process (request threads and workers are the parallelism; "
        "more only contend on few cores); 0 = the library default.",
    )
    evidence_snapshot: bool = Field(
        default=True, description="Verify answers against an in-memory copy of the active clauses' evidence."
    )
    evidence_refresh_s: float = Field(
        default=2.0,
        gt=0,
        description="Seconds between checks that the evidence snapshot still has the graph's version.",
    )
    audit_journal: bool = Field(
        default=True,
        description="An answer is durable once in the local fsync'd audit journal (replayed into Neo4j at "
        "start); false: once committed in Neo4j.",
    )
    audit_journal_dir: Path | None = Field(default=None, description="None = $KGQA_HOME/audit/journal.")
    audit_max_batch: int = Field(
        default=256, ge=1, description="Most answers appended to the audit chain in one transaction."
    )
    audit_linger_s: float = Field(
        default=0.2,
        ge=0,
        le=5,
        description="Journal mode: how long the graph append waits after an answer for more to join its "
        "transaction (answers are durable in the journal already; fewer, larger transactions cost "
        "Neo4j less). Auditors' reads in the same process flush at once.",
    )

    log_level: str = "INFO"
    log_json: bool = False

    @model_validator(mode="before")
    @classmethod
    def _refuse_renamed(cls, data: Any) -> Any:
        given = {k.lower() for k in data} if isinstance(data, dict) else set()
        given |= {k[len("KGQA_") :].lower() for k in os.environ if k.upper().startswith("KGQA_")}
        old = sorted(given & RENAMED.keys())
        if old:
            moves = ", ".join(f"{_env_name(k)} is now {_env_name(RENAMED[k])}" for k in old)
            raise ConfigError(f"renamed settings: {moves} (kgqa.toml: a [section] table per __)")
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def neo4j_home(self) -> Path:
        return self.home / "neo4j"

    @property
    def journal_dir(self) -> Path:
        """Where serving processes journal their answers before they reach Neo4j."""
        return self.audit_journal_dir or self.home / "audit" / "journal"

    @property
    def models_dir(self) -> Path:
        """Fetched model files (the embedding model); ``kgqa models fetch`` writes here."""
        return self.home / "models"

    @property
    def neo4j_auth(self) -> tuple[str, str] | None:
        if self.neo4j_user is None:
            return None
        return (self.neo4j_user, self.neo4j_password or "")

    @property
    def bolt_port(self) -> int:
        tail = self.neo4j_uri.rsplit(":", 1)[-1].split("/")[0]
        return int(tail) if tail.isdigit() else 7687


@lru_cache
def get_settings() -> Settings:
    return Settings()
