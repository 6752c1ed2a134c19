"""The one KgqaError -> HTTP status mapping of the REST transport (STYLE habit 6).

Its gRPC twin is :mod:`serving.grpc.interceptors`; both map the same error family. Routers never
build error responses: they let errors rise and these handlers answer with
``{"error": {"code": <gRPC status name>, "message": ...}}``. FastAPI's own request validation
errors (a non-string question, a missing field) are answered the same way with 422.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from kgqa.errors import (
    DeadlineExceeded,
    GraphUnavailable,
    InvalidArgument,
    KgqaError,
    NotFound,
    NotReady,
    PermissionDenied,
    Unauthenticated,
)

log = structlog.get_logger(__name__)

# Most specific first: NotFound and GraphUnavailable are both GraphErrors.
_STATUSES: tuple[tuple[type[KgqaError], int, str], ...] = (
    (InvalidArgument, 422, "INVALID_ARGUMENT"),
    (Unauthenticated, 401, "UNAUTHENTICATED"),
    (PermissionDenied, 403, "PERMISSION_DENIED"),
    (NotFound, 404, "NOT_FOUND"),
    (DeadlineExceeded, 504, "DEADLINE_EXCEEDED"),
    (GraphUnavailable, 503, "UNAVAILABLE"),
    (NotReady, 503, "UNAVAILABLE"),
)


def error_status(exc: BaseException) -> tuple[int, str, str]:
    """HTTP status, code name and client-safe message for ``exc``.

    Non-kgqa exceptions are bugs: logged with an incident id, answered 500 without internals.
    Also used by the SSE stream to report an error after the response has started.
    """
    if isinstance(exc, KgqaError):
        for cls, status, code in _STATUSES:
            if isinstance(exc, cls):
                return status, code, str(exc)
        return 500, "INTERNAL", str(exc)
    incident = uuid.uuid4().hex[:12]
    log.error("http.internal_error", incident=incident, exc_info=exc)
    return 500, "INTERNAL", f"internal error (incident {incident}); the server log has details"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _respond(exc: BaseException) -> JSONResponse:
    status, code, message = error_status(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


async def _kgqa_error(request: Request, exc: Exception) -> JSONResponse:
    return _respond(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    message = "invalid request: " + "; ".join(problems)
    return JSONResponse(error_body("INVALID_ARGUMENT", message), status_code=422)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return _respond(exc)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(KgqaError, _kgqa_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


__all__ = ["error_body", "error_status", "install_error_handlers"]
