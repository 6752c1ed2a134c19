"""From cleaned lines to blocks: headings, paragraphs with their line breaks joined, tables.

Layout breaks lines wherever the column ends; a sentence is one unit of meaning and the later
stages (clause text, chunking, retrieval, citation quotes) need it whole. A line joins the
paragraph before it unless something says a new unit starts: the previous line ends a sentence,
is much shorter than a full line, sits far above, or this line is a heading, a 第X条 clause or a
numbered item. A sentence that continues over a page break is joined the same way and the
paragraph records the page it ends on.
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest.cleaning.marks import (
    HeadingMark,
    clause_number,
    ends_sentence,
    heading_mark,
    is_clause_marker_only,
    is_item_marker_only,
    spaced_marker,
    starts_item,
)
from ingest.cleaning.text import display_width, is_latinish, is_wide
from ingest.types import Block, RawTable

SHORT_LINE_RATIO = 0.6
"""A line narrower than this share of a full line ends its paragraph (the last line of a
paragraph, a title); wrapped lines fill the column."""

_NUMERIC_JOIN = set("0123456789,.，．")


@dataclass
class TextLine:
    """One cleaned line on its way into a block.

    Attributes:
        text: the line without debris, whitespace tidied.
        page: page number the line is on.
        heading_level: heading level given by the source (Markdown ``#``, DOCX style).
        hard_break: the source says a new paragraph starts here (a blank line before it, a new
            DOCX paragraph, a vertical gap on a PDF page), whatever the punctuation says.
    """

    text: str
    page: int
    heading_level: int | None = None
    hard_break: bool = False


def join_two(left: str, right: str) -> str:
    """Join two pieces of one sentence across a line break.

    Chinese joins without a space, Latin words with one, and a Latin word hyphenated at the line
    end ("regu-" + "lation") loses the hyphen. A lone clause marker keeps a space before its text.
    """
    if not left:
        return right
    if not right:
        return left
    last, first = left[-1], right[0]
    if is_clause_marker_only(left):
        return f"{left} {right}"
    if last == "-" and len(left) > 1 and left[-2].isascii() and left[-2].isalpha() and first.islower():
        return left[:-1] + right
    if is_latinish(last) and is_latinish(first):
        # A number wrapped in the middle of Chinese text ("1,000," / "000元") has no space to restore.
        if last in _NUMERIC_JOIN and first.isdigit() and any(is_wide(ch) for ch in left):
            return left + right
        return f"{left} {right}"
    return left + right


def join_fragments(parts: list[str]) -> str:
    """Join the wrapped pieces of one text (a table cell, a soft-broken paragraph)."""
    text = ""
    for part in parts:
        text = join_two(text, part)
    return text


@dataclass
class _Open:
    text: str
    last: str
    page: int
    page_end: int


class BlockBuilder:
    """Accumulates lines and tables in reading order and emits blocks.

    Args:
        full_width: display width of a full line in this document (None: unknown, no short-line
            rule), see :data:`SHORT_LINE_RATIO`.
        markdown: treat ``- item`` bullets as item starts.
    """

    def __init__(self, *, full_width: int | None, markdown: bool) -> None:
        self.full_width = full_width
        self.markdown = markdown
        self.blocks: list[Block] = []
        self._open: _Open | None = None
        self._last_clause: int | None = None
        self._last_heading: dict[str, int] = {}

    def add_line(self, line: TextLine) -> None:
        """Place one line: a heading, the start of a paragraph, or the continuation of one."""
        text = line.text
        mark = heading_mark(text)
        if line.heading_level is not None:
            self._emit_heading(mark.text if mark else text, line, mark)
            return
        joinable = self._may_continue(line)
        spaced = spaced_marker(text)
        if mark and (not joinable or spaced or self._heading_in_sequence(mark)):
            self._emit_heading(mark.text, line, mark)
            return
        clause = clause_number(text)
        if clause is not None and (not joinable or spaced or self._clause_in_sequence(clause)):
            self._last_clause = clause or self._last_clause
            self._start(line)
            return
        if joinable and not starts_item(text, markdown=self.markdown):
            assert self._open is not None
            self._open.text = join_two(self._open.text, text)
            self._open.last = text
            self._open.page_end = line.page
            return
        self._start(line)

    def add_table(self, table: RawTable, page_end: int, text: str) -> None:
        """A table always ends the paragraph before it and is a block of its own."""
        self.flush()
        self.blocks.append(Block(kind="table", text=text, page=table.page, page_end=page_end, table=table))

    def flush(self) -> None:
        """Close the open paragraph (at a table, a blank line, or the end of the document)."""
        if self._open is not None:
            self.blocks.append(
                Block(
                    kind="paragraph", text=self._open.text, page=self._open.page, page_end=self._open.page_end
                )
            )
            self._open = None

    def finish(self) -> list[Block]:
        """Flush and return the blocks."""
        self.flush()
        return self.blocks

    def _start(self, line: TextLine) -> None:
        self.flush()
        self._open = _Open(text=line.text, last=line.text, page=line.page, page_end=line.page)

    def _emit_heading(self, text: str, line: TextLine, mark: HeadingMark | None) -> None:
        self.flush()
        if mark is not None and mark.ordinal is not None:
            self._last_heading[mark.unit] = mark.ordinal
            if mark.unit in ("编", "章", "部分"):
                self._last_heading.pop("节", None)
        clause = clause_number(text)
        if clause:
            self._last_clause = clause
        self.blocks.append(
            Block(kind="heading", text=text, page=line.page, page_end=line.page, level=line.heading_level)
        )

    def _may_continue(self, line: TextLine) -> bool:
        """Whether the line can continue the open paragraph, judging by layout and punctuation."""
        current = self._open
        if current is None or line.hard_break:
            return False
        if ends_sentence(current.last):
            return False
        if is_clause_marker_only(current.text) or is_item_marker_only(current.text):
            return True
        return not (self.full_width and display_width(current.last) < SHORT_LINE_RATIO * self.full_width)

    def _heading_in_sequence(self, mark: HeadingMark) -> bool:
        """A heading-looking line inside a running sentence is a heading only if it is next in line."""
        if mark.ordinal is None:
            return False
        previous = self._last_heading.get(mark.unit)
        return mark.ordinal == (previous or 0) + 1

    def _clause_in_sequence(self, number: int) -> bool:
        """ "第六条" after 第五条 starts a clause; "第五条规定的..." in a wrapped sentence does not."""
        return number == (self._last_clause or 0) + 1
