"""Build the gRPC server: servicer + interceptor, bounded concurrency, health, reflection.

- A ``ThreadPoolExecutor(max_workers)`` runs the calls (the service does blocking Neo4j and model
  work); ``maximum_concurrent_rpcs`` bounds the calls admitted at once, so under overload the
  excess is refused at once with RESOURCE_EXHAUSTED instead of queueing without limit.
- ``grpc.health.v1.Health`` reports SERVING while :meth:`QAService.ready` succeeds and
  NOT_SERVING while it raises (Neo4j down); a small daemon thread polls it.
- Server reflection is on, so ``grpcurl -plaintext HOST:PORT list`` and ``describe`` work.
- :meth:`GrpcServer.stop` first flips health to NOT_SERVING (load balancers stop sending), then
  lets calls in flight finish for ``grace`` seconds.

Why a small wrapper instead of a bare ``grpc.Server``: the bound port (port 0 picks a free one)
and the health poller must live and stop with the server.
"""

from __future__ import annotations

import threading
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kgqa.errors import ConfigError
from serving.auth import KeyRing
from serving.grpc import SERVICE_NAME, qa_pb2_grpc
from serving.grpc.interceptors import ServiceInterceptor
from serving.grpc.servicer import QAServicer
from serving.metrics import Metrics
from serving.service import QAService

log = structlog.get_logger(__name__)

# Health is reported for the whole server ("") and for the QA service by name.
_HEALTH_NAMES = ("", SERVICE_NAME)


class HealthPoller:
    """Keeps the health status in step with :meth:`QAService.ready`.

    Args:
        service: the QA service whose readiness (Neo4j reachable) is polled.
        health_servicer: the grpc health servicer to update.
        interval_s: seconds between polls.
    """

    def __init__(self, service: QAService, health_servicer: health.HealthServicer, interval_s: float) -> None:
        self._service = service
        self._health = health_servicer
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kgqa-grpc-health", daemon=True)
        self.serving = False

    def poll_once(self) -> bool:
        """Check readiness now and publish it; return whether the service is ready."""
        try:
            self._service.ready()
            ready = True
        except Exception as exc:  # any failure means "do not send traffic here"
            ready = False
            if self.serving:
                log.warning("grpc.health.not_serving", reason=str(exc))
        if self._stop.is_set():
            return ready
        status = (
            health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in _HEALTH_NAMES:
            self._health.set(name, status)
        self.serving = ready
        return ready

    def start(self) -> None:
        self.poll_once()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.poll_once()


@dataclass
class GrpcServer:
    """A built gRPC server, its bound port and its health poller."""

    server: grpc.Server
    port: int
    health: health.HealthServicer
    poller: HealthPoller
    _stopped: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.server.start()
        self.poller.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Report NOT_SERVING, refuse new calls, let calls in flight finish within ``grace`` s.

        Returns:
            An event set once every call has finished (or was cancelled after ``grace``).
        """
        self.poller.stop()
        self.health.enter_graceful_shutdown()
        return self.server.stop(grace)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self.server.wait_for_termination(timeout)


def build_grpc_server(
    service: QAService,
    keyring: KeyRing,
    *,
    host: str = "127.0.0.1",
    port: int = 50051,
    max_workers: int = 16,
    max_concurrent_rpcs: int | None = 64,
    metrics: Metrics | None = None,
    health_interval_s: float = 5.0,
) -> GrpcServer:
    """Build (not start) the gRPC server over ``service``.

    Args:
        service: the QA service shared with the REST app.
        keyring: API keys accepted in ``authorization: Bearer`` metadata.
        host: interface to bind.
        port: port to bind; 0 picks a free one (see ``GrpcServer.port``).
        max_workers: threads that run calls.
        max_concurrent_rpcs: calls admitted at once; more get RESOURCE_EXHAUSTED. None = no bound.
        metrics: shared metrics; a private registry when None.
        health_interval_s: seconds between readiness polls for the health service.

    Raises:
        ConfigError: the address cannot be bound.
    """
    metrics = metrics or Metrics()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kgqa-grpc"),
        interceptors=[ServiceInterceptor(keyring, metrics)],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=[("grpc.so_reuseport", 0)],
    )
    qa_pb2_grpc.add_QAServiceServicer_to_server(QAServicer(service, metrics), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in _HEALTH_NAMES:
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(f"cannot bind gRPC to {address}: {exc}; choose another KGQA_GRPC_PORT") from exc
    if bound == 0:
        raise ConfigError(f"cannot bind gRPC to {address}; choose another KGQA_GRPC_PORT")
    return GrpcServer(
        server, bound, health_servicer, HealthPoller(service, health_servicer, health_interval_s)
    )


__all__ = ["GrpcServer", "HealthPoller", "build_grpc_server"]
