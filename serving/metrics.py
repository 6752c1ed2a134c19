"""Prometheus metrics shared by the gRPC and REST transports, exposed at ``GET /metrics``.

One :class:`Metrics` object (with its own registry, so two servers in one process — tests,
benchmarks — never collide) is built with the servers and handed to both transports. Labels are
bounded: routes are recorded by their template (``/v1/clauses/{clause_id}``), never by the raw
path, and gRPC methods by their name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric, StateSetMetricFamily
from prometheus_client.registry import Collector

from kg.breaker import BreakerState, CircuitBreaker
from serving.types import AnswerResult

# Answers take from a few ms (extractive) to seconds (a model on GPU).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The counters and histograms of the serving layer.

    Args:
        registry: where the metrics live; a fresh registry when None.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "kgqa_requests",
            "Requests by transport, route (HTTP route template or gRPC method), method (HTTP method, or "
            "unary/stream for gRPC) and status (HTTP status or gRPC code name).",
            ["transport", "route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "kgqa_request_duration_seconds",
            "Request latency by transport and route or gRPC method.",
            ["transport", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ask_seconds = Histogram(
            "kgqa_ask_duration_seconds",
            "Latency of answered questions (Ask, AskStream, POST /v1/ask) by transport.",
            ["transport"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.answers = Counter(
            "kgqa_answers",
            "Answers by transport and status (VERIFIED, UNVERIFIED, NO_EVIDENCE).",
            ["transport", "status"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "kgqa_requests_in_flight",
            "Requests being served now, by transport.",
            ["transport"],
            registry=self.registry,
        )

    def name_worker(self, worker: str) -> None:
        """Say which serving process these metrics are of (``kgqa serve --workers N`` runs several
        behind one port; each has its own metrics): ``kgqa_worker_info{worker, pid} 1``."""
        Gauge(
            "kgqa_worker_info",
            "The serving process these metrics are of (one of the workers sharing the ports).",
            ["worker", "pid"],
            registry=self.registry,
        ).labels(worker, str(os.getpid())).set(1)

    def track_audit(self, pending: Callable[[], float], groups: Callable[[], float]) -> None:
        """Expose the audit writer: answers accepted but not yet in Neo4j, and groups appended."""
        Gauge(
            "kgqa_audit_pending",
            "Answers accepted (durable in the journal) and not yet appended to the audit chain in Neo4j.",
            registry=self.registry,
        ).set_function(pending)
        Gauge(
            "kgqa_audit_groups",
            "Groups of answers appended to the audit chain by this process (one transaction each).",
            registry=self.registry,
        ).set_function(groups)

    def observe_request(self, transport: str, route: str, method: str, status: str, seconds: float) -> None:
        """Count one finished request and record its latency."""
        self.requests.labels(transport, route, method, status).inc()
        self.request_seconds.labels(transport, route).observe(seconds)

    def observe_answer(self, transport: str, result: AnswerResult, seconds: float) -> None:
        """Count one answer by status and record how long the question took."""
        self.answers.labels(transport, result.status.value).inc()
        self.ask_seconds.labels(transport).observe(seconds)

    def track_breaker(self, breaker: CircuitBreaker) -> None:
        """Expose the graph circuit breaker: ``kgqa_graph_breaker{kgqa_graph_breaker="open"}`` and
        ``kgqa_graph_breaker_trips_total``, read from the breaker at scrape time."""
        self.registry.register(_BreakerCollector(breaker))

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _BreakerCollector(Collector):
    def __init__(self, breaker: CircuitBreaker) -> None:
        self._breaker = breaker

    def collect(self) -> Iterator[Metric]:
        state = self._breaker.state
        yield StateSetMetricFamily(
            "kgqa_graph_breaker",
            "State of the Neo4j circuit breaker (open: calls refused at once while Neo4j is down).",
            value={s.value: s is state for s in BreakerState},
        )
        yield CounterMetricFamily(
            "kgqa_graph_breaker_trips",
            "Times the Neo4j circuit breaker opened.",
            value=self._breaker.trips,
        )


__all__ = ["Metrics"]
