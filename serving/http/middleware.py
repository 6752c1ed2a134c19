"""Plain ASGI middleware of the REST app (streaming responses pass through): request metrics, the
request-body limit, the concurrency limit and the worker's name on every response.

Routes are labelled by their template (``/v1/clauses/{clause_id:path}``), never the raw path,
so clause ids and answer ids cannot blow up the label space; unmatched paths share one label.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kgqa.errors import Overloaded, RequestTooLarge
from serving.http.errors import http_error
from serving.metrics import Metrics

TRANSPORT = "http"

# An oversized body is read and dropped up to this size before the 413 (see BodyLimitMiddleware).
_DRAIN_LIMIT = 8 * 1024 * 1024


class MetricsMiddleware:
    """Counts every HTTP request by route template, method and status, and times it.

    Args:
        app: the wrapped ASGI app.
        metrics: the shared metrics.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.labels(TRANSPORT).inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.labels(TRANSPORT).dec()
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(
                TRANSPORT, template, scope.get("method", ""), str(status), time.perf_counter() - start
            )


class BodyLimitMiddleware:
    """Refuses a request body larger than ``max_bytes`` with 413 before any route sees it.

    A declared ``Content-Length`` over the limit is refused before any route runs; a body sent
    without one (chunked) is kept only up to the limit. The rest of an oversized body is read and
    dropped (up to 8 MiB, past which the connection is simply closed) so the client gets the 413.
    The routes get the body from memory (they would read it whole anyway), so no route can be
    handed a megabyte to work on.

    Args:
        app: the wrapped ASGI app.
        max_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, int(declared))
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send, None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as ASGI does

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, declared: int | None) -> None:
        # Read (and drop) what the client is still sending, up to a bound: answering mid-upload
        # makes the server reset the connection and the client sees no answer at all.
        drained = 0
        while drained < _DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        size = f"{declared} bytes" if declared is not None else f"more than {self.max_bytes} bytes"
        error = http_error(
            RequestTooLarge(
                f"the request body is {size}; the limit is {self.max_bytes} (KGQA_MAX_REQUEST_BYTES)"
            )
        )
        response = error.response()
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


class ConcurrencyLimitMiddleware:
    """Answers an API request (``/v1/...``) with 429 at once while ``max_concurrent`` are being
    served, instead of queueing it without bound (the twin of gRPC's ``maximum_concurrent_rpcs``).

    Health, readiness, metrics and the docs are never refused: they are what an orchestrator
    asks a busy server. The count is per process (each worker admits its own share).

    Args:
        app: the wrapped ASGI app.
        max_concurrent: API requests admitted at once.
    """

    def __init__(self, app: ASGIApp, max_concurrent: int, prefix: str = "/v1/") -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.prefix = prefix
        self.in_flight = 0  # only touched on the event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrent:
            error = http_error(
                Overloaded(
                    f"the server is answering {self.max_concurrent} requests; retry shortly "
                    "(KGQA_HTTP_MAX_CONCURRENT_REQUESTS)"
                )
            )
            await error.response()(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


class WorkerHeaderMiddleware:
    """Names the serving process on every response (``X-Kgqa-Worker``), so that a client, a
    load test or an operator can tell the workers behind one port apart."""

    def __init__(self, app: ASGIApp, worker: str) -> None:
        self.app = app
        self.header = (b"x-kgqa-worker", worker.encode("ascii"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), self.header]}
            await send(message)

        await self.app(scope, receive, send_wrapper)
