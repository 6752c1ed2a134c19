"""Request metrics for the REST app, as plain ASGI middleware (streaming responses pass through).

Routes are labelled by their template (``/v1/clauses/{clause_id:path}``), never the raw path,
so clause ids and answer ids cannot blow up the label space; unmatched paths share one label.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.metrics import Metrics

TRANSPORT = "http"


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
