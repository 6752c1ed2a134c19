"""Readiness as state: checked in the background, served from memory.

``/readyz`` and the gRPC health service must answer at once, above all while Neo4j is down —
the moment an orchestrator asks them. So neither makes a graph call: :class:`Readiness` checks
the graph (:meth:`QAService.ready`) in a thread of its own every ``interval_s`` seconds, follows
the circuit breaker (not ready the moment it opens; checked again the moment it closes), and
keeps the answer. Listeners (gRPC health) hear every change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from kg.breaker import OPEN_MESSAGE, BreakerState
from kgqa.errors import GraphUnavailable, NotReady
from serving.service import QAService

log = structlog.get_logger(__name__)

STARTING = "starting: the graph has not been checked yet"


@dataclass(frozen=True)
class ReadyStatus:
    """The last readiness verdict.

    Attributes:
        ready: the service can answer.
        reason: why not (client-safe: no address, no driver text); empty when ready.
        graph_version: the graph version at the last successful check.
        model_id: the answering model.
        checked_at: ``time.monotonic()`` of the verdict.
    """

    ready: bool
    reason: str = ""
    graph_version: int | None = None
    model_id: str = ""
    checked_at: float = 0.0

    def raise_unless_ready(self) -> None:
        """Raise the kgqa error the transports map to 503 / UNAVAILABLE."""
        if self.ready:
            return
        if self.reason == STARTING:
            raise NotReady("the service is starting; retry in a few seconds")
        raise GraphUnavailable(self.reason or OPEN_MESSAGE)


Listener = Callable[[bool], None]


class Readiness:
    """Keeps :class:`ReadyStatus` current without ever blocking a reader of it.

    Args:
        service: the QA service whose graph is checked.
        interval_s: seconds between background checks.
    """

    def __init__(self, service: QAService, *, interval_s: float = 5.0) -> None:
        self._service = service
        self._interval = interval_s
        self._status = ReadyStatus(False, STARTING)
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> ReadyStatus:
        """The current verdict, from memory."""
        return self._status

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(ready)`` now and on every change."""
        with self._lock:
            self._listeners.append(listener)
        listener(self._status.ready)

    def check_now(self) -> ReadyStatus:
        """Check the graph now (in the caller's thread) and publish the verdict."""
        breaker = self._service.breaker
        if breaker is not None and not breaker.closed:
            return self._publish(ReadyStatus(False, OPEN_MESSAGE, checked_at=time.monotonic()))
        try:
            info = self._service.ready()
        except GraphUnavailable as exc:
            return self._publish(ReadyStatus(False, str(exc), checked_at=time.monotonic()))
        except Exception as exc:  # anything else is a bug; keep the client message generic
            log.warning("readiness.check_failed", error=type(exc).__name__)
            return self._publish(
                ReadyStatus(False, "not ready: the readiness check failed", checked_at=time.monotonic())
            )
        version = info.get("graph_version")
        return self._publish(
            ReadyStatus(
                True,
                graph_version=int(version) if isinstance(version, int) else None,
                model_id=str(info.get("model_id", "")),
                checked_at=time.monotonic(),
            )
        )

    def start(self) -> None:
        """Check once now, then keep checking in the background."""
        if self._thread is not None:
            return
        if self._service.breaker is not None:
            self._service.breaker.subscribe(self._on_breaker)
        self.check_now()
        self._thread = threading.Thread(target=self._run, name="kgqa-readiness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._service.breaker is not None:
            self._service.breaker.unsubscribe(self._on_breaker)

    def _on_breaker(self, state: BreakerState) -> None:
        if state is BreakerState.OPEN and self._status.ready:
            self._publish(ReadyStatus(False, OPEN_MESSAGE, checked_at=time.monotonic()))
        elif state is BreakerState.CLOSED:
            self._wake.set()  # check now rather than at the next tick

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            self.check_now()

    def _publish(self, status: ReadyStatus) -> ReadyStatus:
        with self._lock:
            changed = status.ready != self._status.ready
            self._status = status
            listeners = list(self._listeners) if changed else []
        if changed:
            log.info("readiness.changed", ready=status.ready, reason=status.reason or None)
        for listener in listeners:
            try:
                listener(status.ready)
            except Exception:
                log.exception("readiness.listener_failed")
        return status


__all__ = ["ReadyStatus", "Readiness"]
