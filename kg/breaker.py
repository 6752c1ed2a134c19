"""A circuit breaker for Neo4j: fail at once while the graph is known to be down.

Without it, every request of a service whose Neo4j went away spends its whole retry budget
finding that out again, one after another, and holds a worker while it does. The breaker
remembers instead:

- **closed**: calls go through. A call that fails with an availability error after its retries
  (:meth:`CircuitBreaker.record_failure`) opens it.
- **open**: calls are refused at once with :class:`GraphUnavailable`. A background thread waits
  ``probe_interval_s`` and half-opens it.
- **half-open**: one probe (:func:`kg.guard.probe_database`: one read, no retries) runs in that
  thread, calls are still refused; success closes the breaker, failure opens it again for
  another interval.

Requests never act as probes, so none of them waits on a dead server while the breaker is open.
Listeners hear every change of state (readiness, gRPC health, metrics).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable

import structlog

from kgqa.errors import GraphUnavailable

log = structlog.get_logger(__name__)

#: What a client is told while the breaker is open: no address, no driver text.
OPEN_MESSAGE = "graph unavailable: Neo4j is not reachable; retry in a few seconds"


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


Listener = Callable[[BreakerState], None]


class CircuitBreaker:
    """Opens on an availability failure, probes in the background, closes when a probe succeeds.

    Args:
        probe: raises when the graph cannot be reached (:func:`kg.guard.probe_database`).
        probe_interval_s: seconds between the opening (or a failed probe) and the next probe.
    """

    def __init__(self, probe: Callable[[], object], *, probe_interval_s: float = 2.0) -> None:
        if probe_interval_s <= 0:
            raise ValueError("probe_interval_s must be positive")
        self._probe = probe
        self._interval = probe_interval_s
        self._state = BreakerState.CLOSED
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._prober: threading.Thread | None = None
        self._listeners: list[Listener] = []
        self._opened_at = 0.0
        self.trips = 0
        """How many times the breaker opened since it was built."""

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def closed(self) -> bool:
        return self._state is BreakerState.CLOSED

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener(state)`` on every change of state (from the thread that made it)."""
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def check(self) -> None:
        """Raise GraphUnavailable unless the breaker is closed (costs one attribute read)."""
        if self._state is not BreakerState.CLOSED:
            raise GraphUnavailable(OPEN_MESSAGE)

    def record_failure(self, exc: BaseException) -> None:
        """A call failed for availability after its retries: open, and start probing."""
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                return
            self._state = BreakerState.OPEN
            self._opened_at = time.monotonic()
            self.trips += 1
            if self._prober is None:  # the prober clears this, under the lock, when it closes
                self._prober = threading.Thread(
                    target=self._probe_until_closed, name="kgqa-graph-probe", daemon=True
                )
                self._prober.start()
        # The driver's text names the server; it belongs in the server log, never in a response.
        log.warning("graph.breaker.open", error=type(exc).__name__, detail=str(exc)[:300])
        self._notify(BreakerState.OPEN)

    def stop(self) -> None:
        """Stop probing (at shutdown); an open breaker then stays open."""
        self._stop.set()

    def _probe_until_closed(self) -> None:
        while not self._stop.wait(self._interval):
            self._set(BreakerState.HALF_OPEN)
            try:
                self._probe()
            except Exception as exc:  # any failure: the graph is still not usable
                self._set(BreakerState.OPEN)
                log.debug("graph.breaker.probe_failed", error=type(exc).__name__)
                continue
            with self._lock:
                self._state = BreakerState.CLOSED
                self._prober = None
            log.info("graph.breaker.closed", down_s=round(time.monotonic() - self._opened_at, 1))
            self._notify(BreakerState.CLOSED)
            return
        with self._lock:
            self._prober = None

    def _set(self, state: BreakerState) -> None:
        with self._lock:
            if self._state is state:
                return
            self._state = state
        self._notify(state)

    def _notify(self, state: BreakerState) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(state)
            except Exception:  # a broken listener must not stop the breaker
                log.exception("graph.breaker.listener_failed")


__all__ = ["OPEN_MESSAGE", "BreakerState", "CircuitBreaker"]
