"""Settings: ``KGQA_*`` environment variables, optionally a ``kgqa.toml``; built once, passed down.

Nothing reads settings at import time; the CLI calls :func:`get_settings` and hands the pieces to
constructors (habit 4 of STYLE.md).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ingest.config import ChunkConfig, CleanConfig, IngestConfig, LimitsConfig, OcrConfig, RedactConfig

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """All of kgqa's settings. Environment variables win over ``kgqa.toml``."""

    model_config = SettingsConfigDict(env_prefix="KGQA_", toml_file="kgqa.toml", extra="ignore")

    home: Path = Field(default=REPO_ROOT / ".kgqa", description="Everything kgqa keeps outside Neo4j.")
    neo4j_uri: str = Field(default="bolt://127.0.0.1:7687", description="bolt:// or neo4j:// (cluster) URI.")
    neo4j_user: str | None = Field(default=None, description="None for the local auth-less dev server.")
    neo4j_password: str | None = None
    neo4j_database: str | None = Field(default=None, description="None = the server's default database.")
    neo4j_heap_mb: int = 768
    neo4j_pagecache_mb: int = 128

    ocr_backend: Literal["rapidocr", "paddleocr"] = "rapidocr"
    ocr_dpi: int = 200
    ocr_min_text_chars: int = 10
    chunk_target_chars: int = 500
    chunk_min_chars: int = 100
    chunk_max_chars: int = 800
    redact_extra_patterns: dict[str, str] = Field(
        default_factory=dict, description='Extra redaction patterns, e.g. {"合同编号": "HT-\\\\d{8}"}.'
    )
    max_file_mb: int = 200
    max_pages: int = 2000
    max_docx_xml_mb: int = Field(default=64, description="Most MB one XML part of a DOCX may expand to.")
    max_page_pixels: int = Field(
        default=25_000_000, description="Most pixels a PDF page is rendered to for OCR (lower dpi beyond)."
    )
    parse_timeout_s: float = Field(
        default=900.0, gt=0, description="Wall-clock deadline per file; the parser process is killed past it."
    )
    parse_memory_mb: int = Field(default=4096, gt=0, description="Address-space cap of the parser process.")
    ocr_page_budget_s: float = Field(default=120.0, gt=0, description="Most OCR seconds for one page.")
    ocr_file_budget_s: float = Field(
        default=600.0, gt=0, description="Most OCR seconds for one file (stopped once projected past it)."
    )

    llm_triples: bool = Field(default=False, description="Also extract triples with an LLM endpoint.")
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key: str | None = None

    # --- serving ---
    answer_backend: Literal["extractive", "transformers", "vllm", "openai"] = Field(
        default="extractive", description="Which answer backend generates answers."
    )
    model_path: Path | None = Field(default=None, description="Local Qwen directory (transformers / vllm).")
    adapter_path: Path | None = Field(default=None, description="Optional PEFT LoRA adapter directory.")
    model_sync_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between polls of the model registry for the active model."
    )
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint (backend openai)."
    )
    openai_model: str | None = None
    openai_api_key: str | None = None
    max_new_tokens: int = 256
    no_repeat_ngram: int = Field(
        default=0, ge=0, description="transformers backend: ban repeating an n-gram of the answer itself (0 = off)."
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

    # --- retrieval ---
    retrieval_embedding_model: Path | None = Field(
        default=None,
        description="kgqa model folder or sentence-transformers dir; None = bge-small-zh-v1.5 int8 "
        "in $KGQA_HOME/models (kgqa models fetch bge-small-zh).",
    )
    retrieval_embedding_threads: int = Field(
        default=1, ge=1, description="onnxruntime intra-op threads per embedding call."
    )
    retrieval_index_dir: Path | None = Field(default=None, description="None = $KGQA_HOME/index.")
    retrieval_weights: dict[str, float] = Field(
        default_factory=dict,
        description='Fusion weights overriding the measured defaults, e.g. {"dense": 0.3}.',
    )
    retrieval_rrf_k: int = 10
    retrieval_depth: int = 50
    retrieval_model_path: Path | None = Field(
        default=None, description="Reranker/answerability JSON; None = $KGQA_HOME/retrieval/model.json or packaged."
    )
    retrieval_refuse: bool = Field(default=True, description="Refuse below the answerability threshold.")
    retrieval_stale_check_s: float = 5.0

    log_level: str = "INFO"
    log_json: bool = False

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

    def retrieval_config(self):
        """The retrieval settings as serving's RetrievalConfig (weights merged over the defaults)."""
        from serving.retrieval.config import RetrievalConfig

        config = RetrievalConfig(
            rrf_k=self.retrieval_rrf_k,
            depth=self.retrieval_depth,
            refuse=self.retrieval_refuse,
            model_path=self.retrieval_model_path,
            embedding_model=self.retrieval_embedding_model,
            embedding_threads=self.retrieval_embedding_threads,
            index_dir=self.retrieval_index_dir,
            stale_check_s=self.retrieval_stale_check_s,
        )
        config.weights.update(self.retrieval_weights)
        return config

    def ingest_config(self) -> IngestConfig:
        return IngestConfig(
            ocr=OcrConfig(backend=self.ocr_backend, dpi=self.ocr_dpi, min_text_chars=self.ocr_min_text_chars),
            clean=CleanConfig(),
            redact=RedactConfig(extra_patterns=dict(self.redact_extra_patterns)),
            chunk=ChunkConfig(
                target_chars=self.chunk_target_chars,
                min_chars=self.chunk_min_chars,
                max_chars=self.chunk_max_chars,
            ),
            limits=LimitsConfig(
                max_file_bytes=self.max_file_mb * 1024 * 1024,
                max_pages=self.max_pages,
                max_docx_xml_bytes=self.max_docx_xml_mb * 1024 * 1024,
                max_page_pixels=self.max_page_pixels,
                parse_timeout_s=self.parse_timeout_s,
                parse_memory_mb=self.parse_memory_mb,
                ocr_page_budget_s=self.ocr_page_budget_s,
                ocr_file_budget_s=self.ocr_file_budget_s,
            ),
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
