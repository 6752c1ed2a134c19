"""What dataset generation works from: the graph's active corpus as a :class:`GraphSnapshot`.

``kg`` reads the corpus at one graph version (:func:`kg.corpus.read_corpus`, typed records);
this module turns it into generation's own values (section paths on clauses and tables, document
outlines, enumerated items) and decides which clause cites each table. Generators then work on
plain dataclasses and never touch the driver.

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

import re
from collections.abc import Iterable, Sequence

import neo4j
import structlog

from ingest.types import ClauseItem
from kg.corpus import ClauseContext, CorpusRead, TableRecord, read_corpus
from kg.verification.types import TripleFact
from training.datagen.types import DocumentOutline, GraphSnapshot, SourceClause, SourceTable, SourceTriple

log = structlog.get_logger(__name__)

# A clause that announces a table: 如下表 / 见下表 / 附表1 / 上表 / 本表 / 该表 / 表格. Not 报表 or 列表.
_ANNOUNCES_TABLE = re.compile(r"(?:下|上|附|本|该|此|见|如)表|表格")
# The label an appendix table is referred to by: 附表1, 附表二, 附件3, 附录A.
_APPENDIX_LABEL = re.compile(r"附(?:表|件|录)[0-9一二三四五六七八九十A-Z]+")


class GraphSource:
    """Reads :class:`GraphSnapshot` values from the clause graph (through :func:`kg.corpus.read_corpus`).

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
        corpus = read_corpus(self._driver, self._database, since=since, batch_docs=self._batch_docs)
        snap = _snapshot(corpus)
        log.info(
            "datagen.snapshot",
            graph_version=snap.graph_version,
            clauses=len(snap.clauses),
            tables=len(snap.tables),
            documents=len(snap.outlines),
            changed=None if snap.changed_since is None else len(snap.changed_since),
        )
        return snap


def _snapshot(corpus: CorpusRead) -> GraphSnapshot:
    titles = {d.doc_id: d.title for d in corpus.documents}
    paths: dict[str, tuple[str, ...]] = {}
    outlines: dict[str, DocumentOutline] = {}
    for d in corpus.documents:
        for s in d.sections:
            paths[s.section_id] = s.path
        headings = tuple(h for s in d.sections if s.path and (h := _heading(s.path[-1])))
        outlines[d.doc_id] = DocumentOutline(d.doc_id, d.title, headings)

    by_section: dict[str, list[ClauseContext]] = {}
    by_doc: dict[str, list[ClauseContext]] = {}
    clauses: dict[str, SourceClause] = {}
    for c in corpus.clauses:
        clauses[c.clause_id] = _clause(c, titles, paths)
        by_section.setdefault(c.section_id, []).append(c)
        by_doc.setdefault(c.doc_id, []).append(c)
    tables = tuple(_table(t, titles, paths, by_section, by_doc) for t in corpus.tables)
    return GraphSnapshot(corpus.graph_version, clauses, tables, outlines, corpus.changed_since)


def _heading(path_entry: str) -> str:
    """An outline heading: ``number title`` as in section paths, once where both are the same (序言)."""
    number, _, title = path_entry.partition(" ")
    return title if title == number else path_entry


def items_of(items: Iterable[ClauseItem]) -> tuple[str, ...]:
    """The enumerated items of a clause (（一）, 1., (1), ① at any depth) in order, text only.

    Plain paragraphs (level 1: 第一款 / 第一段) are not items: they are the clause's sentences.
    """
    return tuple(i.text.strip() for i in items if i.level >= 2 and i.text.strip())


def _triple(t: TripleFact) -> SourceTriple:
    return SourceTriple(
        subject=t.subject, predicate=t.predicate, object=t.object, qualifiers=dict(t.qualifiers)
    )


def _clause(c: ClauseContext, titles: dict[str, str], paths: dict[str, tuple[str, ...]]) -> SourceClause:
    return SourceClause(
        clause_id=c.clause_id,
        version=c.version,
        doc_id=c.doc_id,
        doc_title=titles.get(c.doc_id, c.doc_id),
        number=c.number,
        text=c.text,
        section_path=paths.get(c.section_id, ()),
        page_start=c.page_start,
        page_end=c.page_end,
        triples=tuple(_triple(t) for t in c.triples),
        refers_to=c.refers_to,
        items=items_of(c.items),
        neighbours=c.neighbours,
    )


def table_clause(section_clauses: Sequence[ClauseContext], page: int) -> str | None:
    """The clause a table is cited through (see the module docstring for the rule).

    Args:
        section_clauses: the active clauses of the table's section.
        page: the page the table starts on.
    """
    ordered = sorted(section_clauses, key=lambda c: (c.ordinal, c.clause_id))
    if not ordered:
        return None
    before = [c for c in ordered if c.page_start <= page]
    if not before:
        return ordered[0].clause_id
    announcing = [c for c in before if _ANNOUNCES_TABLE.search(c.text)]
    return (announcing or before)[-1].clause_id


def appendix_clause(doc_clauses: Sequence[ClauseContext], labels: Sequence[str]) -> str | None:
    """The first clause of the document that names one of ``labels`` (附表1) as its own appendix."""
    ordered = sorted(doc_clauses, key=lambda c: (c.ordinal, c.clause_id))
    for clause in ordered:
        text = clause.text
        for label in labels:
            for m in re.finditer(re.escape(label), text):
                after = text[m.end() : m.end() + 1]
                if text[max(0, m.start() - 1) : m.start()] != "》" and not after.isdigit():
                    return clause.clause_id
    return None


def _table(
    t: TableRecord,
    titles: dict[str, str],
    paths: dict[str, tuple[str, ...]],
    by_section: dict[str, list[ClauseContext]],
    by_doc: dict[str, list[ClauseContext]],
) -> SourceTable:
    section_path = paths.get(t.section_id, ())
    clause_id = table_clause(by_section.get(t.section_id, []), t.page)
    if clause_id is None:
        labels = _APPENDIX_LABEL.findall(" ".join([t.caption or "", *section_path[-1:]]))
        clause_id = appendix_clause(by_doc.get(t.doc_id, []), list(dict.fromkeys(labels)))
    return SourceTable(
        table_id=t.table_id,
        doc_id=t.doc_id,
        doc_title=titles.get(t.doc_id, t.doc_id),
        section_path=section_path,
        caption=t.caption,
        header=t.header or (),
        rows=t.rows,
        page=t.page,
        clause_id=clause_id,
    )


__all__ = ["GraphSource", "appendix_clause", "items_of", "table_clause"]
