"""The composition root: the only place that builds drivers, pipelines and services."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import neo4j

from ingest.worker import IsolatedPipeline
from kg.breaker import CircuitBreaker
from kg.guard import GuardedDriver, probe_database
from kg.ingest_service import IngestService
from kg.local_server import LocalNeo4j
from kg.reader import GraphReader
from kg.session import graph_errors
from kg.triples import RuleTripleExtractor
from kg.writer import GraphWriter
from kgqa.errors import GraphUnavailable
from kgqa.settings import Settings


def build_driver(settings: Settings, *, check: bool = False) -> neo4j.Driver:
    """A driver for ``KGQA_NEO4J_URI``; bolt:// for one server, neo4j:// for a cluster.

    ``check`` (the CLI's commands) tries the server once before anything else: a command run
    while Neo4j is down says so in a second instead of retrying its first query for 30 s. The
    server does not check: it starts and reports not ready until Neo4j is back.

    Raises:
        GraphUnavailable: with ``check``, when Neo4j cannot be reached.
    """
    driver = neo4j.GraphDatabase.driver(
        settings.neo4j_uri,
        auth=settings.neo4j_auth,
        connection_timeout=10,
        max_transaction_retry_time=30,
        # "property key does not exist" and similar notices are expected on a young graph
        notifications_min_severity="OFF",
    )
    if check:
        try:
            with graph_errors():
                driver.verify_connectivity()
        except BaseException:
            driver.close()
            raise
    return driver


def build_graph(settings: Settings, driver: neo4j.Driver | GuardedDriver) -> GuardedDriver:
    """The serving path's way to Neo4j: the request deadline and the circuit breaker over ``driver``.

    Serving components get this instead of the bare driver, so each request gives up on a dead
    graph within ``KGQA_REQUEST_DEADLINE_S`` and the next ones are refused at once until a
    background probe (every ``KGQA_BREAKER_PROBE_INTERVAL_S``) finds Neo4j back.
    """
    if isinstance(driver, GuardedDriver):
        return driver
    breaker = CircuitBreaker(
        lambda: probe_database(driver, settings.neo4j_database, settings.request_deadline_s),
        probe_interval_s=settings.breaker_probe_interval_s,
    )
    return GuardedDriver(driver, breaker, budget_s=settings.request_deadline_s)


def build_local_server(settings: Settings, *, home=None, bolt_port: int | None = None) -> LocalNeo4j:
    return LocalNeo4j(
        home or settings.neo4j_home,
        bolt_port or settings.bolt_port,
        heap_mb=settings.neo4j_heap_mb,
        pagecache_mb=settings.neo4j_pagecache_mb,
    )


def build_ingest_service(settings: Settings, driver: neo4j.Driver) -> IngestService:
    llm = None
    if settings.llm_triples:
        from kg.llm_extract import LlmTripleExtractor

        llm = LlmTripleExtractor(settings.llm)
    return IngestService(
        IsolatedPipeline(settings.ingest),
        RuleTripleExtractor(),
        GraphWriter(driver, settings.neo4j_database),
        llm_extractor=llm,
    )


def build_graph_editor(settings: Settings, driver: neo4j.Driver):
    """The knowledge managers' edit operations (kg/edits.py), redacting what editors write as
    ingestion does and chunking edited clauses as ingestion does."""
    from ingest.redact import Redactor
    from kg.edits import GraphEditor

    return GraphEditor(
        driver,
        settings.neo4j_database,
        chunk=settings.ingest.chunk,
        redact=Redactor(settings.ingest.redact).redact,
    )


def build_edit_service(settings: Settings, driver: neo4j.Driver | GuardedDriver):
    """The knowledge managers' service (edits, history, revert, impact) shared by gRPC, REST and
    the CLI. Impact reads the dataset under ``$KGQA_HOME/dataset`` and the retrieval index's
    persisted snapshot."""
    from kg.audit import AuditStore
    from serving.edits import EditService
    from serving.impact import ImpactAnalyzer
    from serving.retrieval.index import persisted_graph_version
    from training.dataset import PAIRS_FILE

    editor = build_graph_editor(settings, driver)
    index_dir = settings.retrieval.index_dir or settings.home / "index"
    impact = ImpactAnalyzer(
        editor,
        build_registry(settings, driver),
        AuditStore(driver, settings.neo4j_database),
        settings.home / "dataset" / PAIRS_FILE,
        lambda: persisted_graph_version(index_dir),
    )
    return EditService(editor, impact)


def build_reader(settings: Settings, driver: neo4j.Driver) -> GraphReader:
    return GraphReader(driver, settings.neo4j_database)


def build_backend(settings: Settings, driver: neo4j.Driver | None = None):
    """The configured answer backend (models are loaded here, once, never per request).

    A generative backend without ``KGQA_BACKEND__MODEL_PATH`` takes the registry's active model
    (base and adapter, the adapter named by its model id), so ``kgqa models activate`` is all it
    needs. The ``openai`` backend answers through the shared endpoint ``KGQA_LLM__*``.
    """
    from serving.backends import make_backend

    config = settings.backend
    if config.kind in ("transformers", "vllm") and config.model_path is None and driver is not None:
        with contextlib.suppress(GraphUnavailable):
            active = build_registry(settings, driver).active()
            if active is not None:
                config = dataclasses.replace(
                    config,
                    model_path=active.base_path,
                    adapter_path=active.adapter_path,
                    adapter_name=active.model_id,
                )
    return make_backend(config, settings.llm)


def build_index_store(settings: Settings, driver: neo4j.Driver | GuardedDriver):
    """The on-disk BM25/dense index under $KGQA_HOME (or KGQA_RETRIEVAL__INDEX_DIR)."""
    from serving.retrieval import IndexStore

    return IndexStore(settings.home, driver, settings.retrieval, settings.neo4j_database)


def build_retriever(settings: Settings, driver: neo4j.Driver | GuardedDriver):
    """Hybrid retrieval; loads the index (building it when missing, updating it when stale)."""
    from serving.retrieval import HybridRetriever, load_model

    config = settings.retrieval
    store = build_index_store(settings, driver)
    # Serve even when Neo4j is down at start: readiness reports the outage, and the first query
    # after recovery loads the index.
    with contextlib.suppress(GraphUnavailable):
        store.load()
    model = load_model(settings.home, config.model_path)
    return HybridRetriever(store, model, config)


def limit_native_threads(settings: Settings) -> None:
    """One BLAS thread per serving process (``KGQA_NATIVE_THREADS``).

    A query's dense scores are one small matrix-vector product; OpenBLAS splits it over every
    core, and on a busy 2-core machine its threads wait for each other: 10 ms instead of 0.1 ms
    per question. Request threads and worker processes are the parallelism instead.
    """
    if settings.native_threads > 0:
        from threadpoolctl import threadpool_limits

        threadpool_limits(settings.native_threads, user_api="blas")


def build_audit_writer(settings: Settings, graph, *, version_source=None):
    """The audit writer: journal first (``KGQA_AUDIT_JOURNAL``), or straight into Neo4j; started."""
    from kg.audit import AuditStore
    from kg.audit_writer import AuditWriter

    writer = AuditWriter(
        AuditStore(graph, settings.neo4j_database),
        settings.journal_dir if settings.audit_journal else None,
        max_batch=settings.audit_max_batch,
        version_source=version_source,
        linger_s=settings.audit_linger_s,
    )
    writer.start()
    return writer


def build_qa_service(
    settings: Settings, driver: neo4j.Driver | GuardedDriver, *, retriever=None, backend=None
):
    """The QA service with every dependency built from settings (or given, for tests).

    Every graph call of the service goes through one :class:`GuardedDriver` (``build_graph``);
    pass one to share its breaker with other components (the model sync of ``kgqa serve``).
    The service runs background threads (the evidence snapshot's refresh, the audit writer):
    call its ``close()`` when done.
    """
    from ingest.redact import Redactor
    from kg.audit import AuditStore
    from kg.evidence import GraphEvidence, SnapshotEvidence
    from kg.verifier import Verifier
    from serving.service import BackendHolder, QAService, ServiceConfig

    graph = build_graph(settings, driver)
    from_graph = GraphEvidence(graph, settings.neo4j_database)
    evidence: GraphEvidence | SnapshotEvidence = from_graph
    if settings.evidence_snapshot:
        evidence = SnapshotEvidence(from_graph, refresh_s=settings.evidence_refresh_s)
        evidence.start()
    return QAService(
        retriever=retriever or build_retriever(settings, graph),
        backends=BackendHolder(backend or build_backend(settings, graph.driver)),
        evidence=evidence,
        verifier=Verifier(evidence),
        audit=AuditStore(graph, settings.neo4j_database),
        # an answer whose evidence had no version (no snapshot yet) gets the graph's current one
        writer=build_audit_writer(settings, graph, version_source=from_graph.graph_version),
        reader=GraphReader(graph, settings.neo4j_database),
        redactor=Redactor(settings.ingest.redact),
        breaker=graph.breaker,
        registry=build_registry(settings, graph),
        config=ServiceConfig(
            policy=settings.verify_policy,
            default_k=settings.default_k,
            max_k=settings.max_k,
            max_question_chars=settings.max_question_chars,
            request_deadline_s=settings.request_deadline_s,
        ),
    )


def build_model_sync(settings: Settings, driver: neo4j.Driver | GuardedDriver, service):
    """Polls the model registry and switches the service's adapter when another model is activated."""
    from serving.model_sync import ActiveModelSync

    return ActiveModelSync(
        build_registry(settings, driver), service.backends, interval_s=settings.model_sync_interval_s
    )


def build_registry(settings: Settings, driver: neo4j.Driver | GuardedDriver):
    """The model registry on ``driver`` (every wiring function that needs one builds it here)."""
    from kg.registry import ModelRegistry

    return ModelRegistry(driver, settings.neo4j_database)


def build_generator(base: str | Path, adapter: str | Path | None = None, config=None):
    """An evaluation generator over exactly what the service would load for ``base`` + ``adapter``.

    The model is a serving backend (``transformers``, or ``vllm`` when ``config.backend`` is
    ``vllm``, or ``auto`` on a CUDA machine with vLLM) built by :func:`serving.backends.make_backend`;
    evaluation reaches it through the backends' public batch API only.

    Args:
        base: the local base model directory.
        adapter: a training run folder (or adapter folder) with a PEFT LoRA adapter, or None.
        config: ``training.eval_config.GenerationConfig`` (None: its defaults).

    Raises:
        ConfigError: the model or adapter cannot be loaded, or vLLM was asked for and is missing.
    """
    import structlog

    from serving.backends import BackendConfig, make_backend
    from training.eval_config import GenerationConfig
    from training.generation import ModelGenerator, adapter_name, model_info, resolve_adapter, vllm_available

    config = config or GenerationConfig()
    kind = config.backend
    if kind == "auto":
        kind = "vllm" if vllm_available() else "transformers"
    structlog.get_logger(__name__).info(
        "eval_generator", backend=kind, base=str(base), adapter=str(adapter) if adapter else None
    )
    backend = make_backend(
        BackendConfig(
            kind=kind,
            model_path=str(base),
            adapter_path=str(resolve_adapter(adapter)) if adapter is not None else None,
            adapter_name=adapter_name(adapter) if adapter is not None else "default",
            max_new_tokens=config.max_new_tokens,
            temperature=0.0,
            no_repeat_ngram=config.no_repeat_ngram if kind == "transformers" else 0,
            device=config.device,
            dtype=config.dtype,
            max_lora_rank=config.max_lora_rank,
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
        )
    )
    return ModelGenerator(backend, model_info(base, adapter, backend.model_id, kind), config.max_new_tokens)


def build_encoder_loader(models_dir: Path):
    """How evaluation loads its sentence encoder (``training.metrics.semantic.EncoderLoader``):
    retrieval's ``load_encoder`` over ``models_dir`` (``$KGQA_HOME/models``; bge-small-zh-v1.5
    int8 when no model is named)."""
    from serving.retrieval import load_encoder

    def load(model: Path | None, batch_size: int | None = None):
        return load_encoder(model, models_dir=models_dir, batch_size=batch_size)

    return load


def build_retrain_runner(settings: Settings, driver: neo4j.Driver, config_path: Path | None = None):
    """The incremental retrain runner over ``driver``: config from ``config_path``, else
    ``KGQA_RETRAIN_CONFIG``, else training/configs/retrain.yaml; job folders in ``$KGQA_HOME/jobs``."""
    from training.retrain import RetrainRunner
    from training.retrain_config import RetrainConfig

    config = RetrainConfig.load(config_path or settings.retrain_config)
    return RetrainRunner(
        driver, config, settings.home / "jobs", build_generator, database=settings.neo4j_database
    )


def build_jobs_service(settings: Settings, driver: neo4j.Driver):
    """The admin job service of the servers: retrain jobs run in worker processes that get this
    process's graph, home and retrain config through their environment."""
    from kg.jobs import JobStore
    from serving.jobs import JobsService, WorkerLauncher

    env = {"KGQA_NEO4J_URI": settings.neo4j_uri, "KGQA_HOME": str(settings.home)}
    for name, value in (
        ("KGQA_NEO4J_DATABASE", settings.neo4j_database),
        ("KGQA_NEO4J_USER", settings.neo4j_user),
        ("KGQA_NEO4J_PASSWORD", settings.neo4j_password),
        ("KGQA_RETRAIN_CONFIG", settings.retrain_config),
    ):
        if value is not None:
            env[name] = str(value)
    return JobsService(
        JobStore(driver, settings.neo4j_database),
        build_retrain_runner(settings, driver),
        WorkerLauncher(settings.home / "jobs", env),
    )


def build_retrain_trigger(settings: Settings, driver: neo4j.Driver, jobs):
    """The debounced retrain trigger of ``kgqa serve``, or None when it is off (the default)."""
    if settings.retrain_trigger_changes is None and settings.retrain_trigger_minutes is None:
        return None
    from serving.retrain_trigger import RetrainTrigger

    return RetrainTrigger(
        jobs,
        driver,
        after_changes=settings.retrain_trigger_changes,
        after_minutes=settings.retrain_trigger_minutes,
        database=settings.neo4j_database,
    )
