"""``Annotated`` dependency aliases of the REST routers (the FastAPI template's ``deps.py``).

The service, the key ring and the metrics are put on ``app.state`` by
:func:`serving.http.app.create_app`; nothing here is created at import time.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kgqa.errors import InvalidArgument
from serving.auth import KeyRing
from serving.health import Readiness
from serving.metrics import Metrics
from serving.service import QAService, require
from serving.types import Caller, Role

# auto_error=False: a missing key must become our Unauthenticated (401 + the error body), not
# FastAPI's 403. The scheme still shows up in OpenAPI, so /docs has an "Authorize" button.
_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")


def get_service(request: Request) -> QAService:
    return request.app.state.service


# async: FastAPI runs a sync dependency in its thread pool, and /metrics and /readyz must
# answer even when every pool thread is busy.
async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_readiness(request: Request) -> Readiness:
    return request.app.state.readiness


def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller behind ``Authorization: Bearer <key>`` (raises Unauthenticated)."""
    keyring: KeyRing = request.app.state.keyring
    return keyring.authenticate(credentials.credentials if credentials else None)


def get_deadline(
    x_timeout_ms: Annotated[
        int | None,
        Header(description="Optional time budget in milliseconds; past it the answer is 504."),
    ] = None,
) -> float | None:
    """The request's deadline on the ``time.monotonic()`` clock, from ``X-Timeout-Ms``."""
    if x_timeout_ms is None:
        return None
    if x_timeout_ms <= 0:
        raise InvalidArgument("X-Timeout-Ms must be a positive number of milliseconds")
    return time.monotonic() + x_timeout_ms / 1000.0


def require_reader(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    """Router-wide guard for routes that do not call QAService themselves (chat completions)."""
    require(caller, Role.READER)
    return caller


ServiceDep = Annotated[QAService, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReadinessDep = Annotated[Readiness, Depends(get_readiness)]
CallerDep = Annotated[Caller, Depends(get_caller)]
DeadlineDep = Annotated[float | None, Depends(get_deadline)]

__all__ = ["CallerDep", "DeadlineDep", "MetricsDep", "ReadinessDep", "ServiceDep", "require_reader"]
