"""Graph expansion: clauses related to the top hits through the graph itself.

A clause that says "按照本准则第五条" is hard to use without 第五条; the clause after a hit often
finishes its thought (exceptions, the second half of a list); a rare entity shared by two
clauses (售后回购, 合同取得成本) ties them across documents. These neighbours join the fusion as
one more ranking with a low weight, so they fill the context rather than push hits out of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import neo4j

from kg import queries as q
from kg.writer import graph_errors


class GraphExpander:
    """Neighbours of seed clauses: REFERS_TO targets, NEXT/previous within a section, rare shared entities.

    Args:
        driver: an open ``neo4j.Driver``.
        database: Neo4j database; ``None`` = the server default.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._driver = driver
        self._database = database

    def neighbours(
        self, seeds: Sequence[str], *, max_entity_clauses: int = 6, per_seed: int = 3
    ) -> list[str]:
        """Related active clause ids, best first: by seed rank, then references before adjacency
        before shared entities. Seeds themselves are left out."""
        if not seeds:
            return []
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.RETRIEVAL_NEIGHBOURS,
                seeds=list(seeds),
                max_entity_clauses=max_entity_clauses,
                per_seed=per_seed,
                database_=self._database,
                routing_="r",
            )
        seen = set(seeds)
        out: list[str] = []
        for r in records:
            target = r["target"]
            if target not in seen:
                seen.add(target)
                out.append(target)
        return out
