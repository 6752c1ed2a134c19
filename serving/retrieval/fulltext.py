"""Neo4j full-text retrieval (the ``cjk`` analyzer indexes CJK bigrams of every active clause)."""

from __future__ import annotations

import re

import neo4j

from kg import queries as q
from kg.writer import graph_errors
from serving.types import RetrievedClause

# Lucene query syntax characters; the question is matched as plain terms, never as syntax.
_LUCENE_SPECIAL = re.compile(r'([+\-!(){}\[\]^"~*?:\\/]|&&|\|\|)')


def escape_lucene(text: str) -> str:
    """Escape Lucene operators so any user text is a valid, literal full-text query."""
    cleaned = _LUCENE_SPECIAL.sub(r"\\\1", text)
    return re.sub(r"\b(AND|OR|NOT)\b", lambda m: m.group(1).lower(), cleaned)


class FulltextRetriever:
    """Clauses ranked by Neo4j's full-text score for the question.

    Args:
        driver: an open ``neo4j.Driver``.
        database: target database; ``None`` uses the server default.
    """

    name = "fulltext"

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._driver = driver
        self._database = database

    def retrieve(self, question: str, k: int) -> list[RetrievedClause]:
        query = escape_lucene(question).strip()
        if not query:
            return []
        with graph_errors():
            records, _, _ = self._driver.execute_query(
                q.FULLTEXT_CLAUSES, query=query, k=k, fetch=k * 4, database_=self._database, routing_="r"
            )
        return [
            RetrievedClause(
                clause_id=r["clause_id"],
                version=r["version"],
                doc_id=r["doc_id"],
                doc_title=r["doc_title"],
                doc_version=r["doc_version"] or 1,
                number=r["number"],
                text=r["text"],
                section_path=list(r["section_path"] or []),
                page_start=r["page_start"],
                page_end=r["page_end"],
                score=float(r["score"]),
                sources={self.name: rank},
            )
            for rank, r in enumerate(records, start=1)
        ]
