"""Liveness and readiness probes (no key needed: orchestrators call them)."""

from __future__ import annotations

from fastapi import APIRouter

from serving.http.deps import ServiceDep
from serving.http.schemas import ErrorBody

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The service can answer (Neo4j reachable); 503 when not",
    responses={503: {"model": ErrorBody}},
)
def readyz(service: ServiceDep) -> dict[str, object]:
    return {"status": "ready", **service.ready()}
