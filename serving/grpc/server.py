"""Build the gRPC server: servicer + interceptor, bounded concurrency, health, reflection.

- A ``ThreadPoolExecutor(max_workers)`` runs the calls (the service does blocking Neo4j and model
  work); ``maximum_concurrent_rpcs`` bounds the calls admitted at once, so under overload the
  excess is refused at once with RESOURCE_EXHAUSTED instead of queueing without limit.
- ``grpc.health.v1.Health`` reports SERVING while :class:`serving.health.Readiness` says ready
  and NOT_SERVING while not (Neo4j down, the circuit breaker open). Health answers from that
  state, never from a graph call.
- Server reflection is on, so ``grpcurl -plaintext HOST:PORT list`` and ``describe`` work.
- :meth:`GrpcServer.stop` first flips health to NOT_SERVING (load balancers stop sending), then
  lets calls in flight finish for ``grace`` seconds.

Why a small wrapper instead of a bare ``grpc.Server``: the bound port (port 0 picks a free one)
and the readiness behind health must live and stop with the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kgqa.errors import ConfigError
from serving.auth import KeyRing
from serving.edits import EditService
from serving.grpc import KNOWLEDGE_SERVICE_NAME, SERVICE_NAME, knowledge_pb2_grpc, qa_pb2_grpc
from serving.grpc.interceptors import ServiceInterceptor
from serving.grpc.jobs_servicer import add_job_service
from serving.grpc.knowledge import KnowledgeServicer
from serving.grpc.servicer import QAServicer
from serving.health import Readiness
from serving.jobs import JobsService
from serving.metrics import Metrics
from serving.service import QAService

log = structlog.get_logger(__name__)

# Health is reported for the whole server ("") and for the QA service by name.
_HEALTH_NAMES = ("", SERVICE_NAME)


def _publish_health(health_servicer: health.HealthServicer) -> Callable[[bool], None]:
    """A readiness listener that sets the health status of the server and of the QA service."""

    def publish(ready: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in _HEALTH_NAMES:
            health_servicer.set(name, status)

    return publish


@dataclass
class GrpcServer:
    """A built gRPC server, its bound port, and the readiness its health service reports.

    ``owns_readiness``: the readiness was built for this server alone, so it starts and stops
    with it (``start_servers`` shares one between gRPC and REST and runs it itself).
    """

    server: grpc.Server
    port: int
    health: health.HealthServicer
    readiness: Readiness
    owns_readiness: bool = False

    def start(self) -> None:
        self.server.start()
        if self.owns_readiness:
            self.readiness.start()

    def stop(self, grace: float | None) -> threading.Event:
        """Report NOT_SERVING, refuse new calls, let calls in flight finish within ``grace`` s.

        Returns:
            An event set once every call has finished (or was cancelled after ``grace``).
        """
        if self.owns_readiness:
            self.readiness.stop()
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
    readiness: Readiness | None = None,
    max_message_bytes: int | None = None,
    reuse_port: bool = False,
    worker: str | None = None,
    edits: EditService | None = None,
    jobs: JobsService | None = None,
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
        health_interval_s: seconds between graph checks of a readiness built here.
        readiness: the readiness the health service reports (shared with REST); None builds
            one that starts and stops with this server.
        max_message_bytes: largest request message accepted (larger: RESOURCE_EXHAUSTED); None
            keeps gRPC's default (4 MiB).
        reuse_port: bind with ``SO_REUSEPORT`` (the workers of ``kgqa serve --workers N`` share
            the port). Off otherwise, so a second server on a taken port fails instead of
            silently sharing it.
        worker: this process's name, sent as ``kgqa-worker`` initial metadata on our services.
        edits: the knowledge managers' service; when given, ``KnowledgeService`` is served too.
        jobs: the admin job service (``JobService``: retrain jobs); None = not served.

    Raises:
        ConfigError: the address cannot be bound.
    """
    metrics = metrics or Metrics()
    options: list[tuple[str, int]] = [("grpc.so_reuseport", 1 if reuse_port else 0)]
    if max_message_bytes is not None:
        options.append(("grpc.max_receive_message_length", max_message_bytes))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="kgqa-grpc"),
        interceptors=[ServiceInterceptor(keyring, metrics, worker=worker)],
        maximum_concurrent_rpcs=max_concurrent_rpcs,
        options=options,
    )
    qa_pb2_grpc.add_QAServiceServicer_to_server(QAServicer(service, metrics), server)
    names = [SERVICE_NAME]
    if edits is not None:
        knowledge_pb2_grpc.add_KnowledgeServiceServicer_to_server(KnowledgeServicer(edits), server)
        names.append(KNOWLEDGE_SERVICE_NAME)
    if jobs is not None:
        names.append(add_job_service(server, jobs))
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in _HEALTH_NAMES:
        health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    reflection.enable_server_reflection(
        (*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigError(f"cannot bind gRPC to {address}: {exc}; choose another KGQA_GRPC_PORT") from exc
    if bound == 0:
        raise ConfigError(f"cannot bind gRPC to {address}; choose another KGQA_GRPC_PORT")
    owns = readiness is None
    if readiness is None:
        readiness = Readiness(service, interval_s=health_interval_s)
    readiness.subscribe(_publish_health(health_servicer))
    return GrpcServer(server, bound, health_servicer, readiness, owns_readiness=owns)


__all__ = ["GrpcServer", "build_grpc_server"]
