"""Read what dataset generation needs from the graph, once, at one graph version.

A :class:`GraphSnapshot` is read in one read transaction (so the clauses, tables and the graph
version agree), documents in batches: one query for the documents and their section tree, then per
batch of documents one for the active clauses (with triples, references and neighbours) and one
for the tables. Generators then work on plain dataclasses and never touch the driver.

Which clause a table is cited through (tables are not clauses): the ingest walker attaches a table
to the section that is open where the table appears, while the clause being written at that point
stays open around it. The graph keeps no offset of a table inside its section, only its page, so:

1. the candidates are the section's active clauses that start on or before the table's page (all of
   them in flowing formats, which are one page), in document order (``ordinal``);
2. among them, the last one whose text announces a table (如下表 / 见附表1 / 上表 / 本表 …) wins: that
   clause is the one the table belongs to even when later clauses of the section share the page;
3. otherwise the last candidate (the clause open when the table came);
4. otherwise (every clause of the section starts after the table's page) the section's first
   active clause;
5. a section without active clauses is an appendix holding only the table (附表1 …): the first
   active clause of the same document that names it (见本手册附表1) cites it; a mention right after
   a 《title》 names another document's appendix and does not count. Failing that, ``None``
   (generators skip such tables).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

import neo4j
import structlog

from kg import queries as q
from kg.writer import graph_errors
from training.datagen.types import DocumentOutline, GraphSnapshot, SourceClause, SourceTable, SourceTriple

log = structlog.get_logger(__name__)

# A clause that announces a table: 如下表 / 见下表 / 附表1 / 上表 / 本表 / 该表 / 表格. Not 报表 or 列表.
_ANNOUNCES_TABLE = re.compile(r"(?:下|上|附|本|该|此|见|如)表|表格")
# The label an appendix table is referred to by: 附表1, 附表二, 附件3, 附录A.
_APPENDIX_LABEL = re.compile(r"附(?:表|件|录)[0-9一二三四五六七八九十A-Z]+")


class GraphSource:
    """Reads :class:`GraphSnapshot` values from the clause graph.

    Args:
        driver: an open ``neo4j.Driver``.
        database: target database; ``None`` uses the server default.
        batch_docs: documents per clause/table query (keeps result sizes bounded on large graphs).
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None, *, batch_docs: int = 25) -> None:
        self._driver = driver
        self._database = database
        self._batch_docs = max(1, batch_docs)

    def snapshot(self, since: int | None = None) -> GraphSnapshot:
        """Everything generation reads: active clauses, tables, outlines and the graph version.

        Args:
            since: a graph version; when given, ``changed_since`` holds the ids of the clauses the
                change log touched after it (what ``--since`` regenerates).

        Raises:
            GraphUnavailable: Neo4j cannot be reached.
        """
        with graph_errors(), self._driver.session(database=self._database, default_access_mode="READ") as s:
            snap = s.execute_read(self._read, since)
        log.info(
            "datagen.snapshot",
            graph_version=snap.graph_version,
            clauses=len(snap.clauses),
            tables=len(snap.tables),
            documents=len(snap.outlines),
            changed=None if snap.changed_since is None else len(snap.changed_since),
        )
        return snap

    # -- the read transaction -------------------------------------------------------------------
    def _read(self, tx: neo4j.ManagedTransaction, since: int | None) -> GraphSnapshot:
        version = tx.run(q.GRAPH_VERSION).single(strict=True)["version"]
        docs = [r.data() for r in tx.run(q.DATAGEN_DOCUMENTS)]
        titles = {d["doc_id"]: d["title"] for d in docs}
        paths: dict[str, tuple[str, ...]] = {}
        outlines: dict[str, DocumentOutline] = {}
        for d in docs:
            sections = [s for s in d["sections"] if s.get("section_id")]
            for s in sections:
                paths[s["section_id"]] = tuple(p for p in s["path"] if p)
            headings = tuple(h for s in sections if s["path"] and (h := _heading(s["path"][-1])))
            outlines[d["doc_id"]] = DocumentOutline(d["doc_id"], d["title"], headings)

        clauses: dict[str, SourceClause] = {}
        tables: list[SourceTable] = []
        for batch in _batches([d["doc_id"] for d in docs], self._batch_docs):
            rows = [r.data() for r in tx.run(q.DATAGEN_CLAUSES, doc_ids=batch)]
            by_section: dict[str, list[dict[str, Any]]] = {}
            by_doc: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                clause = _clause(row, titles, paths)
                clauses[clause.clause_id] = clause
                by_section.setdefault(row["section_id"] or "", []).append(row)
                by_doc.setdefault(row["doc_id"], []).append(row)
            for row in tx.run(q.DATAGEN_TABLES, doc_ids=batch):
                tables.append(_table(row.data(), titles, paths, by_section, by_doc))

        changed: frozenset[str] | None = None
        if since is not None:
            changed = frozenset(r["clause_id"] for r in tx.run(q.DATAGEN_CHANGED_SINCE, since=since))
        return GraphSnapshot(version, clauses, tuple(tables), outlines, changed)


def _heading(path_entry: str) -> str:
    """An outline heading: ``number title`` as in section paths, once where both are the same (序言)."""
    number, _, title = path_entry.partition(" ")
    return title if title == number else path_entry


def _batches(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _loads(raw: str | None, default: Any) -> Any:
    if not raw:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return default


def items_of(items_json: str | None) -> tuple[str, ...]:
    """The enumerated items of a clause (（一）, 1., (1), ① at any depth) in order, text only.

    Plain paragraphs (level 1: 第一款 / 第一段) are not items: they are the clause's sentences.
    """
    items = _loads(items_json, [])
    return tuple(
        str(i.get("text", "")).strip()
        for i in items
        if isinstance(i, dict) and int(i.get("level") or 1) >= 2 and str(i.get("text", "")).strip()
    )


def _triple(raw: dict[str, Any]) -> SourceTriple:
    qualifiers = _loads(raw.get("qualifiers_json"), {})
    return SourceTriple(
        subject=raw.get("subject") or "",
        predicate=raw.get("predicate") or "",
        object=raw.get("object") or "",
        qualifiers=qualifiers if isinstance(qualifiers, dict) else {},
    )


def _clause(row: dict[str, Any], titles: dict[str, str], paths: dict[str, tuple[str, ...]]) -> SourceClause:
    return SourceClause(
        clause_id=row["clause_id"],
        version=int(row["version"]),
        doc_id=row["doc_id"],
        doc_title=titles.get(row["doc_id"], row["doc_id"]),
        number=row["number"] or "",
        text=row["text"] or "",
        section_path=paths.get(row["section_id"] or "", ()),
        page_start=int(row["page_start"] or 1),
        page_end=int(row["page_end"] or row["page_start"] or 1),
        triples=tuple(_triple(t) for t in row["triples"]),
        refers_to=tuple(row["refers_to"]),
        items=items_of(row["items_json"]),
        neighbours=tuple(row["neighbours"]),
    )


def table_clause(section_clauses: Sequence[dict[str, Any]], page: int) -> str | None:
    """The clause a table is cited through (see the module docstring for the rule).

    Args:
        section_clauses: the active clauses of the table's section as rows with ``clause_id``,
            ``ordinal``, ``page_start`` and ``text``.
        page: the page the table starts on.
    """
    ordered = sorted(section_clauses, key=lambda c: (c.get("ordinal") or 0, c["clause_id"]))
    if not ordered:
        return None
    before = [c for c in ordered if int(c.get("page_start") or 1) <= page]
    if not before:
        return ordered[0]["clause_id"]
    announcing = [c for c in before if _ANNOUNCES_TABLE.search(c.get("text") or "")]
    return (announcing or before)[-1]["clause_id"]


def appendix_clause(doc_clauses: Sequence[dict[str, Any]], labels: Sequence[str]) -> str | None:
    """The first clause of the document that names one of ``labels`` (附表1) as its own appendix."""
    ordered = sorted(doc_clauses, key=lambda c: (c.get("ordinal") or 0, c["clause_id"]))
    for clause in ordered:
        text = clause.get("text") or ""
        for label in labels:
            for m in re.finditer(re.escape(label), text):
                after = text[m.end() : m.end() + 1]
                if text[max(0, m.start() - 1) : m.start()] != "》" and not after.isdigit():
                    return clause["clause_id"]
    return None


def _table(
    row: dict[str, Any],
    titles: dict[str, str],
    paths: dict[str, tuple[str, ...]],
    by_section: dict[str, list[dict[str, Any]]],
    by_doc: dict[str, list[dict[str, Any]]],
) -> SourceTable:
    header = _loads(row.get("header_json"), None)
    rows = _loads(row.get("rows_json"), [])
    page = int(row.get("page") or 1)
    section_path = paths.get(row["section_id"], ())
    section_clauses = by_section.get(row["section_id"], [])
    clause_id = table_clause(section_clauses, page)
    if clause_id is None:
        labels = _APPENDIX_LABEL.findall(" ".join([row.get("caption") or "", *section_path[-1:]]))
        clause_id = appendix_clause(by_doc.get(row["doc_id"], []), list(dict.fromkeys(labels)))
    return SourceTable(
        table_id=row["table_id"],
        doc_id=row["doc_id"],
        doc_title=titles.get(row["doc_id"], row["doc_id"]),
        section_path=section_path,
        caption=row.get("caption") or None,
        header=tuple(str(h) for h in header) if isinstance(header, list) else (),
        rows=tuple(tuple(str(v) for v in r) for r in rows if isinstance(r, list)),
        page=page,
        clause_id=clause_id,
    )


__all__ = ["GraphSource", "appendix_clause", "items_of", "table_clause"]
