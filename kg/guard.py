"""The serving path's way to Neo4j: retries within the request's deadline, through the breaker.

:class:`GuardedDriver` stands in for ``neo4j.Driver`` wherever serving reads or writes the graph
(retrieval, evidence, audit, provenance, the model registry): it offers the two calls those
modules make, ``execute_query`` and ``session(...).execute_read/execute_write``, so none of them
changes. Every call

1. is refused at once with :class:`GraphUnavailable` while the :class:`CircuitBreaker` is open;
2. makes single attempts (the driver's own retry loop, which knows nothing of deadlines, is not
   used) and retries the retryable failures with jittered exponential backoff (tenacity) only
   while the request's deadline leaves time, never sleeping past it; each attempt may wait for a
   connection only as long as the deadline allows;
3. opens the breaker when it gives up on an availability error (server unreachable, connection
   lost, no connection within the deadline).

The deadline is one per request, shared by all of its graph calls: the service layer sets it with
:func:`graph_deadline`; a call outside any request (start-up, background threads) gets
``budget_s`` of its own. Every call makes at least one attempt, so an answer whose generation
took long is still recorded when the graph is up.

Driver errors leave this module unchanged (``kg.session.graph_errors`` translates them, as for
any driver); only the breaker's own refusal is a :class:`GraphUnavailable`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

import neo4j
from neo4j.exceptions import (
    ConnectionAcquisitionTimeoutError,
    DatabaseUnavailable,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)
from tenacity import Retrying, retry_if_exception, wait_exponential, wait_random

from kg import queries as q
from kg.breaker import CircuitBreaker

T = TypeVar("T")

#: Failures that mean "the graph cannot be reached", as opposed to a bad query: they open the
#: breaker. (A database that is starting or shutting down answers DatabaseUnavailable.)
AVAILABILITY_ERRORS: tuple[type[Exception], ...] = (
    ServiceUnavailable,
    SessionExpired,
    ConnectionAcquisitionTimeoutError,
    DatabaseUnavailable,
)

# Least time an attempt may wait for a connection, even past the deadline (see the module doc).
_MIN_ATTEMPT_S = 1.0

_deadline: ContextVar[float | None] = ContextVar("kgqa_graph_deadline", default=None)


@contextlib.contextmanager
def graph_deadline(deadline: float) -> Iterator[None]:
    """Graph calls inside this block retry only until ``deadline`` (``time.monotonic()`` clock).

    Enter it around work that makes no ``yield`` to another context (a generator must open it
    around each stretch of graph work, not across its yields).
    """
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionAcquisitionTimeoutError):
        return False  # the attempt already waited as long as the deadline allowed
    return isinstance(exc, (Neo4jError, DriverError)) and exc.is_retryable()


def probe_database(driver: neo4j.Driver, database: str | None = None, timeout_s: float = 5.0) -> None:
    """One read on the database, no retries: the breaker's probe (raises while it cannot answer)."""
    with driver.session(
        database=database, default_access_mode=neo4j.READ_ACCESS, connection_acquisition_timeout=timeout_s
    ) as session:
        session.run(q.PROBE).consume()


class GuardedDriver:
    """A ``neo4j.Driver`` stand-in whose calls respect the breaker and the request deadline.

    Args:
        driver: the real driver (owned by the caller, who closes it).
        breaker: the breaker every call passes; its probe should be :func:`probe_database`.
        budget_s: the retry budget of a call made outside :func:`graph_deadline`.
    """

    def __init__(self, driver: neo4j.Driver, breaker: CircuitBreaker, *, budget_s: float = 5.0) -> None:
        self.driver = driver
        self.breaker = breaker
        self.budget_s = budget_s

    # -- the driver API serving uses ------------------------------------------------------------
    def execute_query(
        self,
        query_: str,
        parameters_: dict[str, Any] | None = None,
        routing_: neo4j.RoutingControl | str = neo4j.RoutingControl.WRITE,
        database_: str | None = None,
        **kwargs: Any,
    ) -> neo4j.EagerResult:
        """As ``neo4j.Driver.execute_query`` (records, summary, keys), guarded."""
        parameters = dict(parameters_ or {}, **kwargs)
        mode = neo4j.READ_ACCESS if str(routing_) in ("r", neo4j.RoutingControl.READ) else neo4j.WRITE_ACCESS

        def attempt(wait_s: float) -> neo4j.EagerResult:
            with self.open_session(database_, mode, wait_s) as session:
                return session.run(query_, parameters).to_eager_result()

        return self.call(attempt)

    def session(
        self, database: str | None = None, default_access_mode: str = neo4j.WRITE_ACCESS
    ) -> GuardedSession:
        """A session-like object offering ``execute_read`` and ``execute_write``, guarded."""
        return GuardedSession(self, database, default_access_mode)

    # -- the guard ------------------------------------------------------------------------------
    def call(self, attempt: Callable[[float], T]) -> T:
        """Run ``attempt(connection_wait_s)`` through the breaker, retrying within the deadline.

        Raises:
            GraphUnavailable: the breaker is open (before or between attempts).
            neo4j.exceptions.DriverError | neo4j.exceptions.Neo4jError: the last attempt's error.
        """
        self.breaker.check()
        deadline = _deadline.get()
        if deadline is None:
            deadline = time.monotonic() + self.budget_s
        backoff = wait_exponential(multiplier=0.1, max=1.0) + wait_random(0, 0.1)

        def left() -> float:
            return deadline - time.monotonic()

        def wait(state: Any) -> float:
            return max(0.0, min(backoff(state), left()))

        def one_attempt() -> T:
            self.breaker.check()  # another request may have found the graph down meanwhile
            return attempt(max(left(), _MIN_ATTEMPT_S))

        retrying = Retrying(
            retry=retry_if_exception(_retryable),
            # stop when the next sleep would end at (or past) the deadline
            stop=lambda state: left() <= (state.upcoming_sleep or 0.0) + 0.05,
            wait=wait,
            reraise=True,
        )
        try:
            return retrying(one_attempt)
        except AVAILABILITY_ERRORS as exc:
            self.breaker.record_failure(exc)
            raise

    def open_session(self, database: str | None, mode: str, wait_s: float) -> neo4j.Session:
        """A plain driver session for one attempt: no driver retries, bounded connection wait."""
        return self.driver.session(
            database=database,
            default_access_mode=mode,
            connection_acquisition_timeout=wait_s,
            bookmark_manager=self.driver.execute_query_bookmark_manager,
        )


class GuardedSession:
    """What ``GuardedDriver.session()`` returns: managed transactions, one attempt at a time.

    Each attempt opens a session of its own (a failed connection is not reused) and runs the
    transaction function in an explicit transaction, committed when it returns.
    """

    def __init__(self, guard: GuardedDriver, database: str | None, default_access_mode: str) -> None:
        self._guard = guard
        self._database = database
        self._mode = default_access_mode

    def __enter__(self) -> GuardedSession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def close(self) -> None:
        return None

    def execute_read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._run(neo4j.READ_ACCESS, fn, args, kwargs)

    def execute_write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._run(neo4j.WRITE_ACCESS, fn, args, kwargs)

    def _run(self, mode: str, fn: Callable[..., T], args: tuple, kwargs: dict) -> T:
        def attempt(wait_s: float) -> T:
            with (
                self._guard.open_session(self._database, mode, wait_s) as session,
                session.begin_transaction() as tx,
            ):
                result = fn(tx, *args, **kwargs)
                tx.commit()
                return result

        return self._guard.call(attempt)


__all__ = ["AVAILABILITY_ERRORS", "GuardedDriver", "GuardedSession", "graph_deadline", "probe_database"]
