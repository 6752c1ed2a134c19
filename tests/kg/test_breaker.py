"""kg/breaker.py: the state machine, with a probe we switch between failing and succeeding."""

from __future__ import annotations

import threading
import time

import pytest

from kg.breaker import OPEN_MESSAGE, BreakerState, CircuitBreaker
from kgqa.errors import GraphUnavailable


class _Graph:
    """Stands for Neo4j as the probe sees it: up or down, and how often it was probed."""

    def __init__(self) -> None:
        self.up = False
        self.probes = 0

    def probe(self) -> None:
        self.probes += 1
        if not self.up:
            raise ConnectionRefusedError("down")


def _wait_for(predicate, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_a_failure_opens_it_and_calls_are_refused_until_a_probe_succeeds():
    graph = _Graph()
    breaker = CircuitBreaker(graph.probe, probe_interval_s=0.05)
    seen: list[BreakerState] = []
    breaker.subscribe(seen.append)
    breaker.check()  # closed: passes
    breaker.record_failure(ConnectionRefusedError("down"))
    assert breaker.state is BreakerState.OPEN and breaker.trips == 1
    with pytest.raises(GraphUnavailable, match="graph unavailable") as err:
        breaker.check()
    assert str(err.value) == OPEN_MESSAGE
    assert _wait_for(lambda: graph.probes >= 3)  # probes keep failing: still refused
    assert not breaker.closed
    graph.up = True
    # listeners hear of a change after it is made, from the probe's thread: wait for both
    assert _wait_for(lambda: breaker.closed and seen[-1] is BreakerState.CLOSED)
    breaker.check()
    assert seen[0] is BreakerState.OPEN and BreakerState.HALF_OPEN in seen and seen[-1] is BreakerState.CLOSED
    probes = graph.probes
    time.sleep(0.2)
    assert graph.probes == probes  # no probing while closed


def test_it_opens_again_after_recovering():
    graph = _Graph()
    breaker = CircuitBreaker(graph.probe, probe_interval_s=0.05)
    for trip in (1, 2):
        graph.up = False
        breaker.record_failure(ConnectionRefusedError("down"))
        assert breaker.trips == trip and not breaker.closed
        graph.up = True
        assert _wait_for(lambda: breaker.closed)


def test_concurrent_failures_count_one_trip_and_start_one_prober():
    def probers() -> int:
        return sum(t.name == "kgqa-graph-probe" for t in threading.enumerate())

    graph = _Graph()
    breaker = CircuitBreaker(graph.probe, probe_interval_s=0.05)
    before = probers()
    threads = [
        threading.Thread(target=breaker.record_failure, args=(ConnectionRefusedError("down"),))
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert breaker.trips == 1
    assert probers() - before == 1
    graph.up = True
    assert _wait_for(lambda: breaker.closed)


def test_stop_ends_probing():
    graph = _Graph()
    breaker = CircuitBreaker(graph.probe, probe_interval_s=0.05)
    breaker.record_failure(ConnectionRefusedError("down"))
    breaker.stop()
    time.sleep(0.2)
    probes = graph.probes
    time.sleep(0.2)
    assert graph.probes == probes and not breaker.closed
