"""Cleaning: a parsed document becomes a stream of headings, paragraphs and tables.

Order matters and follows how the noise got there: page furniture (running headers/footers,
page numbers) is removed first, from the raw lines and their positions; then markup debris is
stripped from what is left; then pages left with nothing to say are reported as blank; then
tables cut by a page break are put back together; finally lines are joined into blocks.
The building blocks live in :mod:`ingest.cleaning`.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

import structlog

from ingest.cleaning.debris import DebrisStripper, strip_inline
from ingest.cleaning.joining import BlockBuilder, TextLine
from ingest.cleaning.pagenum import is_page_number
from ingest.cleaning.running import Position, band_zone, find_running_lines
from ingest.cleaning.tables import clean_table, continues, merge, render
from ingest.cleaning.text import close_cjk_gaps, display_width, meaningful_chars, tidy_spaces
from ingest.config import CleanConfig
from ingest.types import Block, CleanDocument, Line, Page, ParsedDocument, RawTable

log = structlog.get_logger(__name__)

GAP_RATIO = 1.7
"""On a positioned page, a line further below the previous one than this many typical line
spacings starts a new paragraph (the blank space between paragraphs)."""

_MIN_LINES_FOR_WIDTH = 8
_SETEXT = re.compile(r"^\s{0,3}(=+|-+)\s*$")


@dataclass
class _PageLine:
    text: str
    top: float | None
    heading_level: int | None
    hard_break: bool
    soft: bool = False
    """A later piece of one source line (a ``\\n`` or ``<br>`` inside it): a soft line break."""


@dataclass
class _TableItem:
    table: RawTable
    page_end: int


@dataclass
class _CleanPage:
    number: int
    items: list[_PageLine | _TableItem] = field(default_factory=list)


def clean_document(doc: ParsedDocument, config: CleanConfig) -> CleanDocument:
    """Remove page furniture and markup debris and rebuild the text as blocks.

    Args:
        doc: the parser's output; positioned lines (``top`` set) enable header/footer detection.
        config: band height and repetition thresholds for running headers/footers and the
            blank-page threshold.

    Returns:
        The document as blocks in reading order, with the number of removed lines and the
        numbers of blank pages. ``redactions`` is left empty for the redactor.
    """
    markdown = doc.kind in ("md", "txt")
    paginated = any(line.top is not None for page in doc.pages for line in page.lines)
    running = find_running_lines(doc.pages, config) if paginated else set()
    stripper = DebrisStripper(markdown=markdown)

    removed = 0
    blank_pages: list[int] = []
    pages: list[_CleanPage] = []
    for page_index, page in enumerate(doc.pages):
        cleaned, dropped = _clean_page(page_index, page, running, stripper, config, markdown=markdown)
        removed += dropped
        if _is_blank(cleaned, config):
            blank_pages.append(page.number)
            removed += sum(1 for item in cleaned.items if isinstance(item, _PageLine))
            continue
        pages.append(cleaned)

    _merge_split_tables(pages)
    if paginated:
        _mark_gaps(pages)
    blocks = _build_blocks(pages, docx=doc.kind == "docx", markdown=markdown)

    warnings = list(doc.warnings)
    if len(doc.pages) > 1 and len(blank_pages) * 2 > len(doc.pages):
        warnings.append(
            f"{len(blank_pages)} of {len(doc.pages)} pages are blank after cleaning; "
            "if the file is scanned, check that OCR ran"
        )
    log.debug("clean.document", blocks=len(blocks), removed_lines=removed, blank_pages=len(blank_pages))
    return CleanDocument(
        source_path=doc.source_path,
        kind=doc.kind,
        title=tidy_spaces(strip_inline(doc.title, markdown=markdown)) or doc.title,
        sha256=doc.sha256,
        pages=len(doc.pages),
        ocr_pages=doc.ocr_pages,
        blocks=blocks,
        removed_lines=removed,
        blank_pages=blank_pages,
        warnings=warnings,
    )


def _clean_page(
    page_index: int,
    page: Page,
    running: set[Position],
    stripper: DebrisStripper,
    config: CleanConfig,
    *,
    markdown: bool,
) -> tuple[_CleanPage, int]:
    """One page without furniture and debris; returns it and the number of lines dropped."""
    line_positions = [i for i, item in enumerate(page.items) if isinstance(item, Line) and item.text.strip()]
    edges = {line_positions[0], line_positions[-1]} if line_positions else set()
    out = _CleanPage(page.number)
    dropped = 0
    pending_break = False
    for index, item in enumerate(page.items):
        if isinstance(item, RawTable):
            table = clean_table(item, markdown=markdown)
            if table is not None:
                out.items.append(_TableItem(table, page.number))
            continue
        if not item.text.strip():
            pending_break = True
            continue
        if (page_index, index) in running:
            dropped += 1
            continue
        in_band = band_zone(item, config.band) is not None
        if (in_band or index in edges) and is_page_number(item.text):
            dropped += 1
            continue
        level = item.heading_level
        if markdown and level is None:
            level = _setext_level(page.items, index)
        pieces: list[str] = []
        for raw in item.text.splitlines():
            stripped = stripper.strip(raw)
            level = level if level is not None else stripped.heading_level
            pieces.extend(p for p in (tidy_spaces(close_cjk_gaps(s)) for s in stripped.lines) if p)
        if not pieces:
            dropped += 1
            pending_break = True
            continue
        for n, piece in enumerate(pieces):
            out.items.append(_PageLine(piece, item.top, level, hard_break=pending_break, soft=n > 0))
            pending_break = False
    return out, dropped


def _setext_level(items: list[Line | RawTable], index: int) -> int | None:
    """Markdown "Title\\n=====" (level 1) and "Title\\n-----" (level 2) underlines."""
    if index + 1 >= len(items):
        return None
    nxt = items[index + 1]
    if not isinstance(nxt, Line):
        return None
    match = _SETEXT.match(nxt.text)
    if not match:
        return None
    return 1 if match.group(1).startswith("=") else 2


def _is_blank(page: _CleanPage, config: CleanConfig) -> bool:
    if any(isinstance(item, _TableItem) for item in page.items):
        return False
    chars = sum(meaningful_chars(item.text) for item in page.items if isinstance(item, _PageLine))
    return chars < config.blank_page_chars


def _merge_split_tables(pages: list[_CleanPage]) -> None:
    """Join a table that ends one page with the table that opens the next page, in place."""
    pending: _TableItem | None = None
    pending_page = -1
    for page in pages:
        head = page.items[0] if page.items else None
        if (
            pending is not None
            and page.number == pending_page + 1
            and isinstance(head, _TableItem)
            and continues(pending.table, head.table)
        ):
            pending.table = merge(pending.table, head.table)
            pending.page_end = page.number
            page.items.pop(0)
            if not page.items:  # the whole page was table: it may go on further
                pending_page = page.number
                continue
        tail = page.items[-1] if page.items else None
        pending = tail if isinstance(tail, _TableItem) else None
        pending_page = page.number


def _mark_gaps(pages: list[_CleanPage]) -> None:
    """Flag lines that sit clearly further down than the typical line spacing of the document."""
    steps: list[tuple[_PageLine, float]] = []
    for page in pages:
        previous: _PageLine | None = None
        for item in page.items:
            if not isinstance(item, _PageLine) or item.top is None:
                previous = None
                continue
            if previous is not None and previous.top is not None and item.top > previous.top:
                steps.append((item, item.top - previous.top))
            previous = item
    if len(steps) < 3:
        return
    typical = statistics.median(step for _, step in steps)
    for line, step in steps:
        if step > GAP_RATIO * typical:
            line.hard_break = True


def _full_width(pages: list[_CleanPage]) -> int | None:
    """Display width of a full line: the 90th percentile of the body lines' widths."""
    widths = sorted(
        display_width(item.text)
        for page in pages
        for item in page.items
        if isinstance(item, _PageLine) and item.heading_level is None
    )
    if len(widths) < _MIN_LINES_FOR_WIDTH:
        return None
    return widths[int(0.9 * (len(widths) - 1))]


def _build_blocks(pages: list[_CleanPage], *, docx: bool, markdown: bool) -> list[Block]:
    builder = BlockBuilder(full_width=None if docx else _full_width(pages), markdown=markdown)
    for page in pages:
        for item in page.items:
            if isinstance(item, _TableItem):
                builder.add_table(item.table, item.page_end, render(item.table))
                continue
            # In DOCX every Line is a paragraph of its own; only its soft breaks join.
            new_paragraph = item.hard_break or (docx and not item.soft)
            builder.add_line(TextLine(item.text, page.number, item.heading_level, hard_break=new_paragraph))
    return builder.finish()
