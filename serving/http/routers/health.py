"""Liveness and readiness probes (no key needed: orchestrators call them).

Both answer from memory, on the event loop (``async``): never a graph call, never a wait for a
worker thread, so they answer at once while Neo4j is down and every worker is busy.
"""

from __future__ import annotations

from fastapi import APIRouter

from serving.http.deps import ReadinessDep
from serving.http.schemas import ErrorBody

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The service can answer (Neo4j reachable at the last background check); 503 when not",
    responses={503: {"model": ErrorBody}},
)
async def readyz(readiness: ReadinessDep) -> dict[str, object]:
    status = readiness.status()
    status.raise_unless_ready()
    return {"status": "ready", "graph_version": status.graph_version, "model_id": status.model_id}
