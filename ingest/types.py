"""Typed hand-offs of the ingestion pipeline.

Every stage (parse -> clean -> redact -> structure -> chunk) passes one of these values to the
next, and ``kg`` consumes only :class:`DocumentTree`. Nothing here knows about Neo4j.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

DocKind = Literal["pdf", "docx", "txt", "md"]
BlockKind = Literal["heading", "paragraph", "table"]


@dataclass
class Line:
    """One visual line of a page.

    ``top`` is the vertical position relative to the page height (0 = top edge, 1 = bottom), known
    for PDF pages (text layer or OCR) and ``None`` for flowing formats. Header/footer detection
    uses it to compare lines that sit in the same band across pages.
    ``heading_level`` is set where the source format says so (DOCX styles, Markdown ``#``).
    """

    text: str
    top: float | None = None
    heading_level: int | None = None


@dataclass
class RawTable:
    """A table as the parser found it: rows of cell strings, first row possibly a header."""

    rows: list[list[str]]
    page: int
    top: float | None = None
    bottom: float | None = None
    caption: str | None = None


@dataclass
class Page:
    """One page of a source document (flowing formats are a single page numbered 1).

    ``items`` keeps text lines and tables in reading order so a table stays between the
    paragraphs that surround it.
    """

    number: int
    items: list[Line | RawTable] = field(default_factory=list)
    ocr: bool = False

    @property
    def lines(self) -> list[Line]:
        return [i for i in self.items if isinstance(i, Line)]

    @property
    def tables(self) -> list[RawTable]:
        return [i for i in self.items if isinstance(i, RawTable)]


@dataclass
class ParsedDocument:
    """Parser output: pages as found, before cleaning."""

    source_path: Path
    kind: DocKind
    title: str
    pages: list[Page]
    sha256: str
    warnings: list[str] = field(default_factory=list)

    @property
    def ocr_pages(self) -> int:
        return sum(1 for p in self.pages if p.ocr)


@dataclass
class Block:
    """A cleaned unit of content in reading order: a heading, a paragraph or a table.

    Paragraphs have their intra-sentence line breaks joined back; ``page`` is where the block
    starts and ``page_end`` where it ends (a paragraph can run over a page break).
    """

    kind: BlockKind
    text: str
    page: int
    page_end: int
    level: int | None = None
    table: RawTable | None = None


@dataclass
class CleanDocument:
    """Cleaner + redactor output: the document as a block stream, with counts for the report."""

    source_path: Path
    kind: DocKind
    title: str
    sha256: str
    pages: int
    ocr_pages: int
    blocks: list[Block]
    removed_lines: int = 0
    blank_pages: list[int] = field(default_factory=list)
    redactions: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class SectionNode:
    """A 章/节 (or a heading in documents without 条). ``parent_id`` None means the document."""

    section_id: str
    number: str
    title: str
    level: int
    ord: int
    parent_id: str | None


@dataclass
class ClauseItem:
    """A 款/项/numbered item inside a clause: ``(一)``, ``1.``, ``(1)``; ``level`` 1 = 款 level."""

    marker: str
    text: str
    level: int


@dataclass
class Chunk:
    """A piece of a long clause, cut at sentence ends; keeps its clause id for retrieval."""

    chunk_id: str
    clause_id: str
    ord: int
    text: str


@dataclass
class ClauseNode:
    """A 条 (or a synthetic unit: 序言, 附表1, a paragraph group under a heading).

    ``number`` is the human number as written (``第五条``); ``ordinal`` its integer position in
    the document's numbering (5), used to order and to resolve "前款"/"本准则第五条".
    """

    clause_id: str
    number: str
    ordinal: int
    text: str
    page_start: int
    page_end: int
    section_id: str
    sha256: str
    items: list[ClauseItem] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)


@dataclass
class TableNode:
    """A table attached to the section it appears in; ``header`` is None when none was recognized."""

    table_id: str
    section_id: str
    page: int
    caption: str | None
    header: list[str] | None
    rows: list[list[str]]


@dataclass(frozen=True)
class ParseStats:
    """What turning one file into a DocumentTree cost: wall-clock seconds and peak resident memory
    (MB) of the process that did it, when known (the worker measures it per file)."""

    seconds: float = 0.0
    peak_rss_mb: float | None = None


@dataclass
class DocumentTree:
    """The finished, graph-ready document. ``kg`` writes exactly this."""

    doc_id: str
    title: str
    kind: DocKind
    source_path: Path
    sha256: str
    pages: int
    ocr_pages: int
    sections: list[SectionNode]
    clauses: list[ClauseNode]
    tables: list[TableNode]
    redactions: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
