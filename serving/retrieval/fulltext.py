"""Neo4j full-text retrieval (the ``cjk`` analyzer indexes CJK bigrams of every active clause)."""

from __future__ import annotations

import re

import neo4j

from kg import queries as q
from kg.writer import graph_errors

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


class FulltextRetriever:
    """Clauses ranked by Neo4j's full-text score for a question's key terms.

    Args:
        driver: an open ``neo4j.Driver``.
        database: target database; ``None`` uses the server default.
    """

    name = "fulltext"

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._driver = driver
        self._database = database

    def search_terms(self, terms: list[str], k: int) -> list[str]:
        """Active clause ids by full-text score for a bounded list of key terms."""
        query = terms_query(terms)
        if not query:
            return []
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.FULLTEXT_CLAUSE_IDS, query=query, k=k, fetch=k * 4, database_=self._database, routing_="r"
            )
        return [r["clause_id"] for r in records]
