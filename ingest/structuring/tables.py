"""Tables: header-row recognition and the TableNode a table block becomes."""

from __future__ import annotations

import re

from ingest.types import RawTable, TableNode

_NUMERIC = re.compile(r"^[-+−(（]?[¥$￥]?\s*[\d,，.．]+\s*[%％万亿元]?[)）]?$|^[-—–－/]+$")
_MAX_HEADER_CELL = 30


def _is_numeric(cell: str) -> bool:
    return bool(_NUMERIC.match(cell.strip()))


def detect_header(rows: list[list[str]]) -> list[str] | None:
    """The first row when it reads as column labels, else None.

    A heuristic, and deliberately cautious: the first row must have at least one label, no
    numeric cell and only short cells, must differ from the second row, and either the body holds
    numbers (a label row over figures) or the first row's labels are all very short.
    """
    if len(rows) < 2:
        return None
    first = [c.strip() for c in rows[0]]
    if not any(first) or any(_is_numeric(c) for c in first if c):
        return None
    if any(len(c) > _MAX_HEADER_CELL for c in first):
        return None
    if first == [c.strip() for c in rows[1]]:
        return None
    body_numeric = any(_is_numeric(c) for row in rows[1:] for c in row if c.strip())
    if body_numeric or all(len(c) <= 12 for c in first):
        return first
    return None


def make_table(table: RawTable, table_id: str, section_id: str, page: int, caption: str | None) -> TableNode:
    """A TableNode with cells stripped; the header row, when recognised, is not repeated in ``rows``."""
    rows = [[(c or "").strip() for c in row] for row in table.rows]
    rows = [row for row in rows if any(row)]
    header = detect_header(rows)
    body = rows[1:] if header is not None else rows
    return TableNode(
        table_id=table_id,
        section_id=section_id,
        page=page,
        caption=table.caption or caption,
        header=header,
        rows=body,
    )
