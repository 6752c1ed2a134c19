"""Run the gRPC and REST servers in one process over one QAService.

:func:`start_servers` binds both (port 0 picks free ports), starts them in background threads
and returns a :class:`RunningServers` with the bound ports and a graceful :meth:`stop`; tests and
benchmarks use it directly. :func:`run_servers` (``kgqa serve``) starts them the same way, prints
the addresses, and blocks the main thread until SIGTERM or SIGINT, then stops both gracefully:
gRPC health turns NOT_SERVING, neither server accepts new work, calls in flight get ``grace``
seconds to finish. uvicorn runs in a thread of its own (it then leaves signal handling to us),
so one handler stops both servers in the same way whatever the signal.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

import structlog
import uvicorn

from kgqa.errors import ConfigError, ServingError
from serving.auth import KeyRing
from serving.console import ConsoleConfig
from serving.edits import EditService
from serving.grpc.server import GrpcServer, build_grpc_server
from serving.health import Readiness
from serving.http.app import create_app
from serving.jobs import JobsService
from serving.metrics import Metrics
from serving.service import QAService

log = structlog.get_logger(__name__)


@dataclass
class RunningServers:
    """Both servers, started. ``stop`` is idempotent."""

    grpc: GrpcServer
    http: uvicorn.Server
    http_thread: threading.Thread
    http_port: int
    host: str
    grace: float
    metrics: Metrics
    readiness: Readiness

    @property
    def grpc_port(self) -> int:
        return self.grpc.port

    def stop(self, grace: float | None = None) -> None:
        """Stop both servers, letting calls in flight finish within ``grace`` seconds."""
        grace = self.grace if grace is None else grace
        grpc_done = self.grpc.stop(grace)
        self.http.config.timeout_graceful_shutdown = max(int(grace), 1)
        self.http.should_exit = True
        self.http_thread.join(timeout=grace + 5)
        grpc_done.wait(grace + 5)
        self.readiness.stop()


def bind_socket(host: str, port: int, transport: str, *, reuse_port: bool = False) -> socket.socket:
    """A bound (not yet listening) TCP socket on ``host:port`` with SO_REUSEADDR (a restart while
    old connections linger) and, with ``reuse_port``, SO_REUSEPORT (workers sharing the port).

    Args:
        transport: ``HTTP`` or ``gRPC``: names the port in the error and its ``KGQA_<transport>_PORT``.

    Raises:
        ConfigError: the port cannot be bound (in use, not allowed).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot bind {transport} to {host}:{port} ({exc.strerror}); "
            f"choose another KGQA_{transport.upper()}_PORT"
        ) from exc
    return sock


def bind_http(host: str, port: int) -> socket.socket:
    """A listening, inheritable HTTP socket (the workers of ``kgqa serve --workers N`` share it)."""
    sock = bind_socket(host, port, "HTTP")
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def start_servers(
    service: QAService,
    keyring: KeyRing,
    *,
    host: str = "127.0.0.1",
    grpc_port: int = 50051,
    http_port: int = 8000,
    max_workers: int = 16,
    max_concurrent_rpcs: int | None = 64,
    max_concurrent_requests: int | None = None,
    grace: float = 10.0,
    health_interval_s: float = 5.0,
    startup_timeout_s: float = 30.0,
    max_request_bytes: int | None = 256 * 1024,
    console: ConsoleConfig | None = None,
    http_socket: socket.socket | None = None,
    reuse_port: bool = False,
    worker: str | None = None,
    edits: EditService | None = None,
    jobs: JobsService | None = None,
) -> RunningServers:
    """Bind and start gRPC and REST over ``service``; return once both accept connections.

    Args:
        service: the one QA service both transports call.
        keyring: API keys accepted by both transports.
        host: interface to bind (both servers).
        grpc_port: gRPC port; 0 = a free one (read it from ``RunningServers.grpc_port``).
        http_port: HTTP port; 0 = a free one (``RunningServers.http_port``).
        max_workers: gRPC worker threads.
        max_concurrent_rpcs: gRPC calls admitted at once; more get RESOURCE_EXHAUSTED.
        max_concurrent_requests: HTTP API requests admitted at once; more get 429. None = as
            ``max_concurrent_rpcs``.
        grace: default seconds calls in flight get on stop.
        health_interval_s: seconds between the background graph checks behind ``/readyz`` and
            gRPC health (both answer from the last check and the circuit breaker's state).
        startup_timeout_s: give up if uvicorn has not started by then.
        max_request_bytes: largest HTTP request body and gRPC request message; None = no limit
            of ours (gRPC's 4 MiB default still applies).
        console: the web console's settings (``KGQA_CONSOLE__*``); None = defaults.
        http_socket: a listening socket to serve HTTP on instead of binding ``http_port`` (the
            workers of ``kgqa serve --workers N`` share the one their parent bound).
        reuse_port: bind gRPC with ``SO_REUSEPORT``, so the workers listen on one port and the
            kernel spreads connections over them.
        worker: this process's name among the workers (metrics, ``X-Kgqa-Worker``, the gRPC
            ``kgqa-worker`` metadata); None for a single process.
        edits: the knowledge managers' service (gRPC ``KnowledgeService``, REST ``/v1/kg``);
            None serves neither.
        jobs: the admin job service (retrain jobs over gRPC's JobService and REST's /v1/jobs);
            None = not served.

    Raises:
        ConfigError: a port cannot be bound or the HTTP server did not start.
    """
    metrics = Metrics()
    if service.breaker is not None:
        metrics.track_breaker(service.breaker)
    writer = service.audit_writer
    metrics.track_audit(lambda: writer.pending, lambda: writer.groups)
    if worker is not None:
        metrics.name_worker(worker)
    readiness = Readiness(service, interval_s=health_interval_s)
    grpc_server = build_grpc_server(
        service,
        keyring,
        host=host,
        port=grpc_port,
        max_workers=max_workers,
        max_concurrent_rpcs=max_concurrent_rpcs,
        metrics=metrics,
        readiness=readiness,
        max_message_bytes=max_request_bytes,
        reuse_port=reuse_port,
        worker=worker,
        edits=edits,
        jobs=jobs,
    )
    sock = http_socket if http_socket is not None else bind_http(host, http_port)
    config = uvicorn.Config(
        create_app(
            service,
            keyring,
            metrics,
            readiness=readiness,
            max_request_bytes=max_request_bytes,
            console=console,
            max_concurrent=max_concurrent_requests or max_concurrent_rpcs,
            worker=worker,
            edits=edits,
            jobs=jobs,
        ),
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(int(grace), 1),
    )
    bound_port = sock.getsockname()[1]
    http_server = uvicorn.Server(config)
    readiness.start()
    grpc_server.start()
    thread = threading.Thread(
        target=http_server.run, kwargs={"sockets": [sock]}, name="kgqa-http", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not http_server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            grpc_server.stop(0)
            readiness.stop()
            sock.close()
            raise ConfigError(f"the HTTP server did not start on {host}:{bound_port}; see the log")
        time.sleep(0.01)
    return RunningServers(grpc_server, http_server, thread, bound_port, host, grace, metrics, readiness)


def run_servers(
    service: QAService,
    keyring: KeyRing,
    *,
    host: str,
    grpc_port: int,
    http_port: int,
    max_workers: int,
    max_concurrent_rpcs: int | None,
    grace: float,
    health_interval_s: float = 5.0,
    max_request_bytes: int | None = 256 * 1024,
    console: ConsoleConfig | None = None,
    max_concurrent_requests: int | None = None,
    http_socket: socket.socket | None = None,
    reuse_port: bool = False,
    worker: str | None = None,
    stop: threading.Event | None = None,
    edits: EditService | None = None,
    jobs: JobsService | None = None,
) -> None:
    """Serve gRPC and REST until SIGTERM/SIGINT, then shut both down gracefully (``kgqa serve``).

    Prints one line with the bound addresses (useful with port 0) and one when stopping. The
    arguments are those of :func:`start_servers`, filled from ``KGQA_HOST``, ``KGQA_GRPC_PORT``,
    ``KGQA_HTTP_PORT``, ``KGQA_GRPC_MAX_WORKERS``, ``KGQA_GRPC_MAX_CONCURRENT_RPCS``,
    ``KGQA_HTTP_MAX_CONCURRENT_REQUESTS``, ``KGQA_SHUTDOWN_GRACE_S``, ``KGQA_HEALTH_INTERVAL_S``
    and ``KGQA_MAX_REQUEST_BYTES``; ``stop`` is one more way to ask for the graceful stop (a
    worker whose parent is gone sets it).

    Raises:
        ConfigError: a port cannot be bound.
        ServingError: the HTTP server died while serving.
    """
    stop_requested = stop or threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("serve.signal", signal=signal.Signals(signum).name, worker=worker)
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        running = start_servers(
            service,
            keyring,
            host=host,
            grpc_port=grpc_port,
            http_port=http_port,
            max_workers=max_workers,
            max_concurrent_rpcs=max_concurrent_rpcs,
            max_concurrent_requests=max_concurrent_requests,
            grace=grace,
            health_interval_s=health_interval_s,
            max_request_bytes=max_request_bytes,
            console=console,
            http_socket=http_socket,
            reuse_port=reuse_port,
            worker=worker,
            edits=edits,
            jobs=jobs,
        )
        who = f"worker {worker} (pid {os.getpid()}) " if worker is not None else ""
        sys.stdout.write(
            f"kgqa {who}serving gRPC on {host}:{running.grpc_port} and HTTP on http://{host}:{running.http_port}"
            f" (docs at /docs){'; keys from ' + keyring.source if keyring.source else ''}\n"
        )
        sys.stdout.flush()
        http_died = False
        while not stop_requested.wait(1.0):
            if not running.http_thread.is_alive():
                http_died = True
                break
        sys.stdout.write(f"kgqa {who}stopping (grace {grace:g}s)\n")
        sys.stdout.flush()
        running.stop(grace)
        if http_died:
            raise ServingError("the HTTP server stopped unexpectedly; the log above says why")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["RunningServers", "bind_http", "bind_socket", "run_servers", "start_servers"]
