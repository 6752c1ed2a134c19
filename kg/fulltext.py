"""Neo4j full-text search over active clauses (the ``cjk`` analyzer indexes CJK bigrams).

Retrieval asks with a bounded list of key terms and gets clause ids back; provenance comes from
its own snapshot (:mod:`kg.snapshot`), so this is one small read per question.
"""

from __future__ import annotations

import re

import neo4j

from kg import queries as q
from kg.session import GraphSession

# Lucene query syntax characters; the question is matched as plain terms, never as syntax.
_LUCENE_SPECIAL = re.compile(r'([+\-!(){}\[\]^"~*?:\\/]|&&|\|\|)')


def escape_lucene(text: str) -> str:
    """Escape Lucene operators so any user text is a valid, literal full-text query."""
    cleaned = _LUCENE_SPECIAL.sub(r"\\\1", text)
    return re.sub(r"\b(AND|OR|NOT)\b", lambda m: m.group(1).lower(), cleaned)


def terms_query(terms: list[str]) -> str:
    """A Lucene query that ORs each term as a phrase: bounded by the number of terms, not by
    the length of the question (the ``cjk`` analyzer turns a phrase into its bigrams)."""
    parts = [f'"{escape_lucene(t)}"' for t in terms if t.strip()]
    return " OR ".join(parts)


class FulltextSearch:
    """Active clause ids ranked by Neo4j's full-text score for a question's key terms.

    Args:
        driver: an open ``neo4j.Driver`` (serving passes its :class:`kg.guard.GuardedDriver`).
        database: target database; ``None`` uses the server default.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._graph = GraphSession(driver, database)

    def clause_ids(self, terms: list[str], k: int) -> list[str]:
        """At most ``k`` active clause ids, best first; ``[]`` when no term has a character.

        Raises:
            GraphUnavailable: Neo4j cannot be reached (or the breaker is open).
        """
        query = terms_query(terms)
        if not query:
            return []
        records = self._graph.read(q.FULLTEXT_CLAUSE_IDS, query=query, k=k, fetch=k * 4)
        return [r["clause_id"] for r in records]


__all__ = ["FulltextSearch", "escape_lucene", "terms_query"]
