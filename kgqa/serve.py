"""``kgqa serve``: one serving process, or ``--workers N`` of them sharing the gRPC and HTTP ports.

Python runs one thread at a time, so one process uses one core however many request threads it
has. With ``--workers N`` the command becomes a small supervisor:

- it binds the HTTP socket once and hands it to every worker (each runs uvicorn on it: the
  kernel gives each accepted connection to one of them, as ``uvicorn --workers`` does), and
  reserves the gRPC port with ``SO_REUSEPORT``, on which every worker binds its own gRPC
  server (the kernel spreads connections over them);
- each worker is a full serving process (``multiprocessing`` spawn): its own driver, circuit
  breaker, retrieval and evidence snapshots, audit writer and journal, readiness, health and
  metrics (``kgqa_worker_info``, ``X-Kgqa-Worker``, gRPC ``kgqa-worker`` metadata name it);
- a worker that dies is started again (its journal is replayed by its successor); SIGTERM or
  Ctrl-C is passed to every worker, each drains its calls in flight and its audit queue within
  ``KGQA_SHUTDOWN_GRACE_S``, and the supervisor exits once they have; a worker whose supervisor
  is gone (killed) stops the same way by itself.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

import structlog

from kgqa.errors import ServingError
from kgqa.settings import Settings
from serving.console.config import ConsoleConfig

log = structlog.get_logger(__name__)

#: A worker that dies sooner than this after its start counts as a failed start.
_EARLY_EXIT_S = 10.0
#: Failed starts in a row after which the supervisor gives up (a bad setting, a dead port).
_MAX_FAILED_STARTS = 3


@dataclass(frozen=True)
class ServeOptions:
    """Where and how to serve (``kgqa serve`` options over the settings)."""

    host: str
    grpc_port: int
    http_port: int
    workers: int = 1


def _console_config(settings: Settings) -> ConsoleConfig:
    """The console's settings, its sessions in ``$KGQA_HOME/console`` unless set: every worker
    must know a session opened on any of them."""
    if settings.console.state_dir:
        return settings.console
    return dataclasses.replace(settings.console, state_dir=str(settings.home / "console"))


def serve(settings: Settings, options: ServeOptions) -> None:
    """Serve until SIGTERM/SIGINT: in this process, or with ``options.workers`` workers.

    Raises:
        ConfigError: a port cannot be bound.
        ServingError: serving failed (a worker kept dying at start, HTTP died).
    """
    if options.workers <= 1:
        serve_process(settings, options)
    else:
        Supervisor(settings, options).run()


def serve_process(
    settings: Settings,
    options: ServeOptions,
    *,
    http_socket: socket.socket | None = None,
    worker: str | None = None,
    stop: threading.Event | None = None,
) -> None:
    """One serving process: build everything from settings, serve, then stop it all in order
    (transports first, then the audit writer drains, then the background threads)."""
    from kgqa.wiring import (
        build_driver,
        build_edit_service,
        build_graph,
        build_jobs_service,
        build_model_sync,
        build_qa_service,
        build_retrain_trigger,
        limit_native_threads,
    )
    from serving.auth import load_keyring
    from serving.server import run_servers

    limit_native_threads(settings)
    keyring = load_keyring(settings.api_keys, settings.api_keys_file, settings.home)
    with build_driver(settings) as driver:
        graph = build_graph(settings, driver)  # one breaker for every graph call of the process
        service = build_qa_service(settings, graph)
        sync = build_model_sync(settings, graph, service)
        sync.start()
        jobs = build_jobs_service(settings, driver)  # the plain driver: jobs are admin work
        # one trigger per server: with --workers N, worker 0 runs it
        trigger = build_retrain_trigger(settings, driver, jobs) if worker in (None, "0") else None
        if trigger is not None:
            trigger.start()
        try:
            run_servers(
                service,
                keyring,
                host=options.host,
                grpc_port=options.grpc_port,
                http_port=options.http_port,
                max_workers=settings.grpc_max_workers,
                max_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
                max_concurrent_requests=settings.http_max_concurrent_requests,
                grace=settings.shutdown_grace_s,
                health_interval_s=settings.health_interval_s,
                max_request_bytes=settings.max_request_bytes,
                http_socket=http_socket,
                reuse_port=worker is not None,
                worker=worker,
                stop=stop,
                console=_console_config(settings),
                edits=build_edit_service(settings, graph),
                jobs=jobs,
            )
        finally:
            if trigger is not None:
                trigger.stop()
            sync.stop()
            service.close(settings.shutdown_grace_s)
            graph.breaker.stop()


def _prepare_index(settings: Settings) -> None:
    """Bring the on-disk retrieval index up to date once, before the workers start: each would
    otherwise build or update it at the same time in the same folder (spawned, so that the
    supervisor does not keep the index in its own memory)."""
    from ingest.redact import Redactor
    from kgqa.errors import GraphUnavailable
    from kgqa.logging import configure_logging
    from kgqa.wiring import build_driver, build_index_store, limit_native_threads

    configure_logging(settings.log_level, settings.log_json, Redactor(settings.ingest.redact))
    limit_native_threads(settings)
    with build_driver(settings) as driver:
        try:
            build_index_store(settings, driver).load()
        except GraphUnavailable:
            log.warning("serve.index_not_prepared", reason="Neo4j unavailable; the workers load it later")


def _worker_main(settings: Settings, options: ServeOptions, index: int, http_socket: socket.socket) -> None:
    """A worker process's entry point (spawned): serve until told to stop or orphaned."""
    from ingest.redact import Redactor
    from kgqa.logging import configure_logging

    configure_logging(settings.log_level, settings.log_json, Redactor(settings.ingest.redact))
    parent = os.getppid()
    stop = threading.Event()

    def watch_parent() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning("serve.worker_orphaned", worker=index)
                stop.set()

    threading.Thread(target=watch_parent, name="kgqa-parent-watch", daemon=True).start()
    try:
        serve_process(settings, options, http_socket=http_socket, worker=str(index), stop=stop)
    except Exception as exc:
        log.error("serve.worker_failed", worker=index, error=str(exc))
        sys.exit(1)


class Supervisor:
    """Starts ``options.workers`` serving processes on shared ports and keeps them running.

    Args:
        settings: the settings every worker builds itself from.
        options: host, ports and the number of workers.
    """

    def __init__(self, settings: Settings, options: ServeOptions) -> None:
        self.settings = settings
        self.options = options
        self._context = multiprocessing.get_context("spawn")
        self._stop = threading.Event()
        self._processes: dict[int, multiprocessing.process.BaseProcess] = {}
        self._started: dict[int, float] = {}
        self._failed_starts = 0

    def run(self) -> None:
        from serving.auth import load_keyring
        from serving.server import bind_http, bind_socket

        # made once here, so that the workers read one key file rather than race to create it
        keyring = load_keyring(self.settings.api_keys, self.settings.api_keys_file, self.settings.home)
        # a bound (not listening) SO_REUSEPORT socket: it fixes the port the workers share (port 0
        # picks one) and keeps it ours while a worker restarts; it never receives a connection
        reserved = bind_socket(self.options.host, self.options.grpc_port, "gRPC", reuse_port=True)
        http_socket = bind_http(self.options.host, self.options.http_port)
        options = ServeOptions(
            self.options.host, reserved.getsockname()[1], http_socket.getsockname()[1], self.options.workers
        )
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            prepare = self._context.Process(target=_prepare_index, args=(self.settings,), name="kgqa-index")
            prepare.start()
            prepare.join()
            for index in range(options.workers):
                self._start(index, options, http_socket)
            sys.stdout.write(
                f"kgqa supervisor (pid {os.getpid()}): {options.workers} workers on gRPC "
                f"{options.host}:{options.grpc_port} and HTTP http://{options.host}:{options.http_port}"
                f"{'; keys from ' + keyring.source if keyring.source else ''}\n"
            )
            sys.stdout.flush()
            while not self._stop.wait(0.5):
                self._restart_dead(options, http_socket)
            self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            http_socket.close()
            reserved.close()

    def _on_signal(self, signum: int, frame: object) -> None:
        log.info("serve.signal", signal=signal.Signals(signum).name, role="supervisor")
        self._stop.set()

    def _start(self, index: int, options: ServeOptions, http_socket: socket.socket) -> None:
        process = self._context.Process(
            target=_worker_main,
            args=(self.settings, options, index, http_socket),
            name=f"kgqa-worker-{index}",
        )
        process.start()
        self._processes[index] = process
        self._started[index] = time.monotonic()
        log.info("serve.worker_started", worker=index, pid=process.pid)

    def _restart_dead(self, options: ServeOptions, http_socket: socket.socket) -> None:
        for index, process in list(self._processes.items()):
            if process.is_alive():
                if time.monotonic() - self._started[index] > _EARLY_EXIT_S:
                    self._failed_starts = 0
                continue
            early = time.monotonic() - self._started[index] < _EARLY_EXIT_S
            log.warning("serve.worker_died", worker=index, pid=process.pid, exitcode=process.exitcode)
            self._failed_starts = self._failed_starts + 1 if early else 0
            if self._failed_starts >= _MAX_FAILED_STARTS:
                self._stop_all()
                raise ServingError(
                    f"worker {index} exited {self._failed_starts} times right after starting; see the log"
                )
            self._start(index, options, http_socket)

    def _stop_all(self) -> None:
        """SIGTERM every worker (each drains), wait for them, kill what outlived the grace."""
        for process in self._processes.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        end = time.monotonic() + self.settings.shutdown_grace_s + 15.0
        for index, process in self._processes.items():
            process.join(max(0.1, end - time.monotonic()))
            if process.is_alive():
                log.warning("serve.worker_killed", worker=index, pid=process.pid)
                process.kill()
                process.join(5)
        sys.stdout.write("kgqa supervisor stopped\n")
        sys.stdout.flush()


__all__ = ["ServeOptions", "Supervisor", "serve", "serve_process"]
