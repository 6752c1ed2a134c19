"""``create_app``: the REST API over the same QAService instance the gRPC server uses.

Routes (see ``/docs`` for the OpenAPI UI, ``/openapi.json`` for the spec):
``POST /v1/ask``, ``GET /v1/answers/{answer_id}``, ``GET /v1/clauses/{clause_id}``,
``GET /v1/clauses/{clause_id}/answers``, ``POST /v1/chat/completions`` (OpenAI-compatible),
``/healthz``, ``/readyz``, ``/metrics``, and the knowledge managers' ``/v1/kg/...`` routes. Authentication is ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import structlog
from fastapi import APIRouter, Depends, FastAPI

from serving.auth import KeyRing
from serving.console import ConsoleConfig, mount_console
from serving.edits import EditService
from serving.health import Readiness
from serving.http.deps import require_reader
from serving.http.errors import install_error_handlers
from serving.http.middleware import (
    BodyLimitMiddleware,
    ConcurrencyLimitMiddleware,
    MetricsMiddleware,
    WorkerHeaderMiddleware,
)
from serving.http.openai_compat import make_openai_router
from serving.http.routers import answers, ask, clauses, health, kg
from serving.http.routers import jobs as jobs_router
from serving.http.routers import metrics as metrics_router
from serving.jobs import JobsService
from serving.metrics import Metrics
from serving.service import QAService

log = structlog.get_logger(__name__)


def _openai_router(service: QAService) -> APIRouter | None:
    """``POST /v1/chat/completions`` (role reader) over the service's active backend and retriever.

    Needs the public ``QAService.active_backend()`` and ``QAService.retrieve(question, k)``
    (the backend follows model activation); until the service has them the route is skipped
    with a warning rather than reaching into the service's private attributes.
    """
    backend_provider = getattr(service, "active_backend", None)
    retriever = getattr(service, "retrieve", None)
    if backend_provider is None or retriever is None:
        log.warning("http.chat_completions_not_mounted", reason="QAService lacks active_backend/retrieve")
        return None
    return make_openai_router(
        backend_provider,
        retriever,
        k=service.config.default_k,
        max_question_chars=service.config.max_question_chars,
        dependencies=[Depends(require_reader)],
    )


def create_app(
    service: QAService,
    keyring: KeyRing,
    metrics: Metrics | None = None,
    *,
    readiness: Readiness | None = None,
    max_request_bytes: int | None = 256 * 1024,
    console: ConsoleConfig | None = None,
    max_concurrent: int | None = None,
    worker: str | None = None,
    edits: EditService | None = None,
    jobs: JobsService | None = None,
) -> FastAPI:
    """Build the FastAPI app.

    Args:
        service: the QA service (shared with the gRPC server).
        keyring: API keys accepted in ``Authorization: Bearer``.
        metrics: metrics shared with the gRPC server; a private registry (tracking the service's
            circuit breaker) when None.
        readiness: the readiness ``/readyz`` reports (shared with gRPC health); None builds one
            that runs with the app's lifespan.
        max_request_bytes: larger request bodies are refused with 413 before any route runs;
            None = no limit.
        console: the web console's settings (it is served under ``/console``); None = defaults.
        max_concurrent: API requests served at once; more are answered 429 at once. None = no
            limit of ours.
        worker: this process's name among the workers sharing the port (``X-Kgqa-Worker``).
        edits: the knowledge managers' service; when given, the ``/v1/kg/...`` routes are served.
        jobs: the admin job service (``/v1/jobs``: retrain jobs); None = not served.
    """
    owned = readiness is None
    readiness = readiness or Readiness(service)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if owned:
            await anyio.to_thread.run_sync(readiness.start)
        try:
            yield
        finally:
            if owned:
                readiness.stop()

    app = FastAPI(
        title="kgqa",
        version="1",
        description="Answers from finance manuals and regulations with citations verified against "
        "the clause graph, and the audit trail behind every answer.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.keyring = keyring
    if metrics is None:
        metrics = Metrics()
        if service.breaker is not None:
            metrics.track_breaker(service.breaker)
    app.state.metrics = metrics
    app.state.readiness = readiness
    # Added last = outermost: metrics see every answer, the 500s and 413s included.
    install_error_handlers(app)
    if max_request_bytes is not None:
        app.add_middleware(BodyLimitMiddleware, max_bytes=max_request_bytes)
    if max_concurrent is not None:
        app.add_middleware(ConcurrencyLimitMiddleware, max_concurrent=max_concurrent)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if worker is not None:
        app.add_middleware(WorkerHeaderMiddleware, worker=worker)
    for module in (ask, answers, clauses, health, metrics_router):
        app.include_router(module.router)
    if edits is not None:
        app.state.edits = edits
        app.include_router(kg.router)
    if jobs is not None:
        app.state.jobs = jobs
        app.include_router(jobs_router.router)
    openai = _openai_router(service)
    if openai is not None:
        app.include_router(openai)
    mount_console(app, console)
    return app


__all__ = ["create_app"]
