"""How ``kg`` runs Cypher: one driver, one database, driver errors translated once.

Every module of ``kg`` that reads or writes the graph holds a :class:`GraphSession` and calls
:meth:`~GraphSession.read` / :meth:`~GraphSession.write` for single statements, or
:meth:`~GraphSession.read_tx` / :meth:`~GraphSession.write_tx` for work that must see one
state of the graph (several statements in one managed transaction). They then turn the records
into their own typed read models (dataclasses), so no other package handles a ``neo4j.Record``.

The driver is either a ``neo4j.Driver`` (ingestion, training, the CLI) or the serving path's
:class:`kg.guard.GuardedDriver` (deadline-bounded retries behind the circuit breaker): both offer
``execute_query`` and ``session().execute_read/execute_write``, which is all this module uses,
so the guard's retries and breaker apply unchanged wherever serving passes one in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import neo4j
from neo4j.exceptions import Neo4jError, TransientError

from kg.guard import AVAILABILITY_ERRORS
from kgqa.errors import GraphUnavailable

if TYPE_CHECKING:
    from kg.guard import GuardedDriver

T = TypeVar("T")
P = ParamSpec("P")

# Transactions the server ended itself (it is shutting down, or an operator terminated them): the
# driver calls them client errors, but for the caller the graph was simply not available.
_ENDED_BY_SERVER = frozenset(
    {"Neo.ClientError.Transaction.LockClientStopped", "Neo.ClientError.Transaction.Terminated"}
)


@contextmanager
def graph_errors() -> Iterator[None]:
    """Translate driver availability errors (and transient ones left after the retries) into the
    kgqa error family.

    The message reaches unauthenticated clients (``/readyz``): it names no address and quotes no
    driver text. The driver's error stays attached as ``__cause__`` for the server log.
    """
    try:
        yield
    except AVAILABILITY_ERRORS as exc:
        raise GraphUnavailable(
            "graph unavailable: Neo4j is not reachable; retry later "
            "(operators: `kgqa neo4j start`, or check KGQA_NEO4J_URI)"
        ) from exc
    except TransientError as exc:  # still failing when the retries ran out (locks, a busy server)
        raise GraphUnavailable("graph unavailable: Neo4j is busy; retry later") from exc
    except Neo4jError as exc:
        if exc.code not in _ENDED_BY_SERVER:
            raise
        raise GraphUnavailable("graph unavailable: Neo4j ended the transaction; retry later") from exc


class GraphSession:
    """A driver and a database: the one way ``kg`` modules run their queries.

    Args:
        driver: an open ``neo4j.Driver`` or a :class:`kg.guard.GuardedDriver` (owned by the
            composition root, which closes it).
        database: target database; ``None`` uses the server default.

    Every method raises :class:`kgqa.errors.GraphUnavailable` when Neo4j cannot be reached (or
    the breaker is open); a bad query leaves as the driver's own error.
    """

    def __init__(self, driver: neo4j.Driver | GuardedDriver, database: str | None = None) -> None:
        self.driver = driver
        self.database = database

    def read(self, cypher: str, /, **params: Any) -> list[neo4j.Record]:
        """Run one read statement (routed to a reader in a cluster) and return its records."""
        return self._query(cypher, params, "r")

    def write(self, cypher: str, /, **params: Any) -> list[neo4j.Record]:
        """Run one statement in a write transaction of its own and return its records."""
        return self._query(cypher, params, "w")

    def read_tx(
        self, work: Callable[Concatenate[neo4j.ManagedTransaction, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(tx, ...)`` in one managed read transaction (retried as a whole on transient errors)."""
        with graph_errors(), self._session(neo4j.READ_ACCESS) as session:
            return session.execute_read(work, *args, **kwargs)

    def write_tx(
        self, work: Callable[Concatenate[neo4j.ManagedTransaction, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``work(tx, ...)`` in one managed write transaction: all of it is committed, or none."""
        with graph_errors(), self._session(neo4j.WRITE_ACCESS) as session:
            return session.execute_write(work, *args, **kwargs)

    def _session(self, mode: str) -> Any:
        return self.driver.session(database=self.database, default_access_mode=mode)

    def _query(self, cypher: str, params: dict[str, Any], routing: str) -> list[neo4j.Record]:
        # "r"/"w" rather than neo4j.RoutingControl: the guard reads the routing as a string
        with graph_errors():
            records, _, _ = self.driver.execute_query(
                cypher, params, routing_=routing, database_=self.database
            )
        return records


__all__ = ["GraphSession", "graph_errors"]
