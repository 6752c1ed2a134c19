"""What changed in the graph after a version, per clause: the input of an incremental retrain.

Read from the change log (``Change`` nodes, :mod:`kg.changes`): every clause a Change touched after
``since`` (directly, or through a triple stated in it), classified by what it is now:

* ``new``: added after ``since`` and active now;
* ``changed``: active now, existed before (updated text, an edited triple);
* ``retired``: no active version now (retired by a re-ingest or an edit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import neo4j

from kg import queries as q
from kg.session import GraphSession

DeltaKind = Literal["new", "changed", "retired"]


@dataclass(frozen=True)
class ClauseDelta:
    """One clause touched after ``since``: its kind, the ops (in order) and its active version."""

    clause_id: str
    kind: DeltaKind
    ops: tuple[str, ...]
    last_seq: int
    version: int | None


@dataclass(frozen=True)
class GraphDelta:
    """Every clause touched after ``since`` up to ``graph_version``."""

    since: int
    graph_version: int
    clauses: tuple[ClauseDelta, ...] = field(default_factory=tuple)

    def ids(self, *kinds: DeltaKind) -> list[str]:
        """The clause ids of the given kinds (all kinds when none is given), sorted."""
        return sorted(c.clause_id for c in self.clauses if not kinds or c.kind in kinds)

    @property
    def empty(self) -> bool:
        return not self.clauses


def read_delta(driver: neo4j.Driver, since: int, database: str | None = None) -> GraphDelta:
    """The clauses changed after graph version ``since``, read in one transaction."""
    graph = GraphSession(driver, database)

    def work(tx: neo4j.ManagedTransaction) -> GraphDelta:
        version = int(tx.run(q.GRAPH_VERSION).single(strict=True)["version"])
        rows = [r.data() for r in tx.run(q.RETRAIN_DELTA, since=since)]
        clauses = []
        for row in rows:
            ops = tuple(row["ops"])
            kind: DeltaKind
            if not row["active"]:
                kind = "retired"
            elif ops and ops[0] == "clause.add":
                kind = "new"
            else:
                kind = "changed"
            clauses.append(ClauseDelta(row["clause_id"], kind, ops, int(row["last_seq"]), row["version"]))
        return GraphDelta(since, version, tuple(clauses))

    return graph.read_tx(work)


__all__ = ["ClauseDelta", "DeltaKind", "GraphDelta", "read_delta"]
