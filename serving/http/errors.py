"""The one KgqaError -> HTTP status mapping of the REST transport (STYLE habit 6).

Its gRPC twin is :mod:`serving.grpc.interceptors`; both read the codes each error class carries
(``http_status``, ``grpc_code``: see :mod:`kgqa.errors`). Routers never
build error responses: they let errors rise and these handlers answer with
``{"error": {"code": <gRPC status name>, "message": ..., "incident": ...}}`` (``incident`` only
for internal errors). FastAPI's own request validation errors (a non-string question, a missing
field) are answered the same way with 422.

Anything that is not a KgqaError is a bug: :class:`InternalErrorMiddleware` answers it 500 with
an incident id and writes one log record under that id (the stack without local variables, see
``kgqa/logging.py``). It catches the error itself, so Starlette's outermost middleware never
re-raises it to uvicorn and uvicorn never logs a second traceback.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kgqa.errors import KgqaError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class HttpError:
    """What a client gets for an error: status, gRPC code name, message, incident id."""

    status: int
    code: str
    message: str
    incident: str | None = None

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.incident)

    def response(self) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        if self.status == 429:
            headers = {"Retry-After": "1"}
        return JSONResponse(self.body(), status_code=self.status, headers=headers)


def http_error(exc: BaseException) -> HttpError:
    """The client's view of ``exc``.

    Non-kgqa exceptions are bugs: logged once with an incident id, answered 500 without
    internals. Also used by the SSE streams to report an error after the response has started.
    """
    if isinstance(exc, KgqaError):
        return HttpError(exc.http_status, exc.grpc_code, str(exc))
    incident = uuid.uuid4().hex[:12]
    log.error("http.internal_error", incident=incident, exc_info=exc)
    return HttpError(500, "INTERNAL", f"internal error (incident {incident}); quote it to support", incident)


def error_body(code: str, message: str, incident: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if incident is not None:
        error["incident"] = incident
    return {"error": error}


async def _kgqa_error(request: Request, exc: Exception) -> JSONResponse:
    return http_error(exc).response()


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        problems.append(f"{where}: {err.get('msg', 'invalid')}")
    message = "invalid request: " + "; ".join(problems)
    return JSONResponse(error_body("INVALID_ARGUMENT", message), status_code=422)


class InternalErrorMiddleware:
    """Answers any exception that escaped the routes with a 500 and an incident id, logged once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            error = http_error(exc)
            if not started:
                await error.response()(scope, receive, send)
            # else the response is under way: it ends here, the record above says why


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers and the 500 middleware on ``app`` (before other middleware)."""
    app.add_exception_handler(KgqaError, _kgqa_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(InternalErrorMiddleware)


__all__ = ["HttpError", "InternalErrorMiddleware", "error_body", "http_error", "install_error_handlers"]
