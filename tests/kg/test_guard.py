"""kg/guard.py against real drivers: a dead port, and the test run's own Neo4j."""

from __future__ import annotations

import time
import uuid

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import CypherSyntaxError

from kg.breaker import BreakerState, CircuitBreaker
from kg.guard import GuardedDriver, graph_deadline, probe_database
from kg.reader import GraphReader
from kg.session import graph_errors
from kgqa.errors import GraphUnavailable

DEAD = "bolt://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


@pytest.fixture
def dead_graph():
    with GraphDatabase.driver(DEAD) as driver:
        breaker = CircuitBreaker(lambda: probe_database(driver), probe_interval_s=60)
        yield GuardedDriver(driver, breaker, budget_s=2.0)
        breaker.stop()


def _timed(call) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_a_dead_graph_is_retried_within_the_budget_then_refused_at_once(dead_graph):
    def read() -> None:
        with graph_errors():
            GraphReader(dead_graph).graph_version()

    first, error = _timed(read)
    assert isinstance(error, GraphUnavailable)
    assert 1.0 <= first < 10.0  # retried for about the 2 s budget, not the driver's 30 s
    assert "127.0.0.1" not in str(error) and ":9" not in str(error)  # clients never see the address
    assert dead_graph.breaker.state is BreakerState.OPEN and dead_graph.breaker.trips == 1

    again, error = _timed(read)
    assert isinstance(error, GraphUnavailable) and again < 2.0  # refused without touching the network
    assert dead_graph.breaker.trips == 1


def test_the_request_deadline_wins_over_the_budget(dead_graph):
    dead_graph.budget_s = 60.0
    with graph_deadline(time.monotonic() + 1.0):
        elapsed, error = _timed(lambda: dead_graph.execute_query("RETURN 1", routing_="r"))
    assert error is not None and elapsed < 10.0


def test_a_deadline_in_the_past_still_makes_one_attempt(neo4j_driver):
    """An answer that took long to generate is still recorded when the graph is up."""
    graph = GuardedDriver(neo4j_driver, CircuitBreaker(lambda: probe_database(neo4j_driver)), budget_s=5.0)
    with graph_deadline(time.monotonic() - 10):
        records, _, keys = graph.execute_query("RETURN 1 AS one", routing_="r")
    assert keys == ["one"] and records[0]["one"] == 1


def test_reads_and_managed_writes_on_a_live_graph(neo4j_driver):
    graph = GuardedDriver(neo4j_driver, CircuitBreaker(lambda: probe_database(neo4j_driver)), budget_s=5.0)
    marker = f"guard-{uuid.uuid4().hex}"

    def create(tx, value: str) -> str:
        return tx.run("CREATE (n:GuardTest {marker: $m}) RETURN n.marker AS m", m=value).single()["m"]

    def create_then_fail(tx, value: str) -> None:
        tx.run("CREATE (n:GuardTest {marker: $m})", m=value).consume()
        raise ValueError("the transaction function failed")

    try:
        with graph.session() as session:
            assert session.execute_write(create, marker) == marker
            with pytest.raises(ValueError):
                session.execute_write(create_then_fail, marker + "-rolled-back")
        records, _, _ = graph.execute_query(
            "MATCH (n:GuardTest) WHERE n.marker STARTS WITH $m RETURN n.marker AS m",
            {"m": marker},
            routing_="r",
        )
        assert [r["m"] for r in records] == [marker]  # committed once, the failed one rolled back
        with pytest.raises(CypherSyntaxError):
            graph.execute_query("RETURN RETURN")
        assert graph.breaker.closed  # a bad query says nothing about availability
    finally:
        neo4j_driver.execute_query("MATCH (n:GuardTest) WHERE n.marker STARTS WITH $m DELETE n", m=marker)


def test_the_probe_reads_the_database_once(neo4j_driver):
    probe_database(neo4j_driver)  # a live database: no error
    with GraphDatabase.driver(DEAD) as dead:
        elapsed, error = _timed(lambda: probe_database(dead, timeout_s=1.0))
    assert error is not None and elapsed < 10.0  # one attempt, not the driver's 30 s of retries
