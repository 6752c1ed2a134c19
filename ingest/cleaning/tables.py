"""Tables: debris in cells, and tables that a page break cut in two.

A table continued on the next page arrives as two RawTables: the last item of one page and the
first of the next, with the same number of columns, the second either repeating the header row
or starting straight with data. They become one table on the first page.
"""

from __future__ import annotations

from rapidfuzz import fuzz

from ingest.cleaning.debris import strip_inline
from ingest.cleaning.joining import join_fragments
from ingest.cleaning.text import tidy_spaces
from ingest.types import RawTable

_HEADER_SIMILARITY = 90.0


def clean_table(table: RawTable, *, markdown: bool) -> RawTable | None:
    """Strip debris from every cell and drop empty rows; None when nothing is left.

    Line breaks inside a cell are wrapping from the layout and are joined like paragraph lines.
    Rows are padded to the widest row so every consumer can rely on a rectangular table.
    """
    rows: list[list[str]] = []
    for row in table.rows:
        cells = [_clean_cell(cell, markdown=markdown) for cell in row]
        if any(cells):
            rows.append(cells)
    if not rows:
        return None
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    caption = tidy_spaces(strip_inline(table.caption, markdown=markdown)) if table.caption else None
    return RawTable(rows=rows, page=table.page, top=table.top, bottom=table.bottom, caption=caption or None)


def column_count(table: RawTable) -> int:
    """Number of columns (the widest row)."""
    return max((len(r) for r in table.rows), default=0)


def continues(first: RawTable, second: RawTable) -> bool:
    """True when ``second`` (first item of a page) continues ``first`` (last item of the page before).

    Same column count is required; a caption on the second table means the source started a new
    table there, so it is not a continuation.
    """
    if second.caption or not first.rows or not second.rows:
        return False
    return column_count(first) == column_count(second)


def merge(first: RawTable, second: RawTable) -> RawTable:
    """One table from a table and its continuation; a repeated header row is dropped."""
    rows = second.rows
    if _same_row(first.rows[0], rows[0]):
        rows = rows[1:]
    return RawTable(
        rows=[*first.rows, *rows],
        page=first.page,
        top=first.top,
        bottom=second.bottom,
        caption=first.caption,
    )


def render(table: RawTable) -> str:
    """Plain-text form of a table (cells joined by `` | ``, one row a line) for search and redaction."""
    lines = [" | ".join(row) for row in table.rows]
    if table.caption:
        lines.insert(0, table.caption)
    return "\n".join(lines)


def _clean_cell(cell: str | None, *, markdown: bool) -> str:
    if not cell:
        return ""
    parts = [tidy_spaces(strip_inline(p, markdown=markdown)) for p in str(cell).splitlines()]
    return join_fragments([p for p in parts if p])


def _same_row(a: list[str], b: list[str]) -> bool:
    return fuzz.ratio("\t".join(a), "\t".join(b)) >= _HEADER_SIMILARITY
