"""Plain text and Markdown: decode the bytes, then keep lines, headings and tables.

Chinese text files arrive as UTF-8 (with or without BOM), GBK/GB18030 from older Windows tools,
or UTF-16 from Notepad. Decoding is strict at every step: a wrong guess that "succeeds" with
replacement characters would put mojibake into the graph, which is worse than refusing the file.

Markdown is parsed with markdown-it-py only to *locate* headings and tables; every other line is
kept verbatim (emphasis markers, escapes, stray HTML and all) because the cleaner owns debris
removal and must never find text missing.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from pathlib import Path

from charset_normalizer import from_bytes
from lxml import html as lxml_html
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.types import Line, Page, RawTable
from kgqa.errors import IngestError

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# charset-normalizer may only choose among encodings Chinese finance documents really use;
# left free it happily "detects" cp1252 in random bytes, which decodes anything.
_DETECTABLE = ["utf_8", "gb18030", "big5", "utf_16_le", "utf_16_be"]
_FALLBACKS = ("gb18030", "big5")
_TRIED = "UTF-8, UTF-8/UTF-16/UTF-32 with BOM, charset-normalizer (GB18030, Big5, UTF-16), GB18030, Big5"
_MAX_GARBAGE_RATIO = 0.01

_DATE_SUFFIX = re.compile(r"\s*[(（]\s*\d{4}[-./年]\d{1,2}[-./月]\d{1,2}日?\s*[)）]\s*$")
_RULE_LINE = re.compile(r"^\s*(?:={3,}|-{3,}|\*{3,}|_{3,})\s*$")


def title_from_stem(path: Path) -> str:
    """A title from the file name: ``会计法(2024-06-28).md`` -> ``会计法``.

    Law collections put the promulgation date in the file name; it is version metadata, not part
    of the title the graph derives the ``doc_id`` from.
    """
    stem = _DATE_SUFFIX.sub("", path.stem).strip()
    return stem or path.stem


def _garbage_ratio(text: str) -> float:
    """Share of characters no real document contains: controls, private use, unassigned, U+FFFD."""
    if not text:
        return 0.0
    bad = 0
    for ch in text:
        if ch in "\t\n\r\f\v":
            continue
        if ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Co", "Cn", "Cs"):
            bad += 1
    return bad / len(text)


def _strict(data: bytes, encoding: str) -> str | None:
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    return text if _garbage_ratio(text) <= _MAX_GARBAGE_RATIO else None


def decode_text(path: Path, data: bytes) -> tuple[str, str]:
    """Decode a text file's bytes; returns ``(text, encoding)``.

    Order: byte-order mark, strict UTF-8, charset-normalizer restricted to plausible encodings,
    then strict GB18030 and Big5. Every candidate must decode without errors *and* look like text
    (almost no control or unassigned characters).

    Raises:
        IngestError: nothing decodes to plausible text; the message lists what was tried.
    """
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = _strict(data, encoding)
            if text is not None:
                return text.lstrip("\ufeff"), encoding
    text = _strict(data, "utf-8")
    if text is not None:
        return text, "utf-8"
    best = from_bytes(data, cp_isolation=_DETECTABLE).best()
    if best is not None:
        text = _strict(data, best.encoding)
        if text is not None:
            return text, best.encoding
    for encoding in _FALLBACKS:
        text = _strict(data, encoding)
        if text is not None:
            return text, encoding
    raise IngestError(path, f"cannot decode text: tried {_TRIED}; save the file as UTF-8 and re-ingest")


def parse_txt_text(text: str) -> Page:
    """A plain-text file as one page of lines (blank lines dropped, indentation kept)."""
    page = Page(number=1)
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.strip():
            page.items.append(Line(text=line))
    return page


def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def _inline_plain(token: Token) -> str:
    """Plain text of an inline token (emphasis and escapes removed) - used for titles only."""
    parts = [c.content for c in token.children or [] if c.type in ("text", "code_inline")]
    return "".join(parts).strip() or token.content.strip()


def _html_tables(fragment: str) -> tuple[list[list[list[str]]], list[str]]:
    """Rows of each top-level ``<table>`` in an HTML block, and the text lines outside them.

    The outside text (a caption paragraph, a trailing line) is emitted after the tables: HTML
    blocks in Markdown almost always open with the table itself. ``colspan`` cells are padded with empty strings so columns stay aligned with the header;
    a nested table's text stays inside its cell.
    """
    try:
        root = lxml_html.fragment_fromstring(fragment, create_parent="div")
    except Exception:  # lxml raises several parser errors on odd fragments: treat as no table
        return [], []
    tables: list[list[list[str]]] = []
    for table in root.xpath(".//table[not(ancestor::table)]"):
        rows: list[list[str]] = []
        for tr in table.xpath("./tr|./thead/tr|./tbody/tr|./tfoot/tr"):
            row: list[str] = []
            for cell in tr.xpath("./td|./th"):
                row.append(" ".join(part.strip() for part in cell.itertext() if part.strip()))
                span = cell.get("colspan", "1").strip()
                row.extend([""] * (int(span) - 1 if span.isdigit() and int(span) > 1 else 0))
            if row:
                rows.append(row)
        if rows:
            tables.append(rows)
        table.drop_tree()
    outside = [t.strip() for t in root.text_content().splitlines() if t.strip()]
    return tables, outside


def parse_markdown_text(text: str) -> tuple[Page, str | None]:
    """A Markdown document as one page, and its first level-1 heading (the document title).

    Headings (ATX and setext) become lines with ``heading_level``; pipe tables and simple HTML
    tables become :class:`RawTable`; horizontal rules and setext underlines are dropped (no text);
    every other non-blank source line is kept verbatim.
    """
    source = text.splitlines()
    tokens = _markdown().parse(text)
    special: dict[int, list[Line | RawTable]] = {}
    consumed: set[int] = set()
    title: str | None = None

    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open" and tok.map:
            inline = tokens[i + 1]
            level = int(tok.tag[1:])
            if title is None and level == 1:
                title = _inline_plain(inline)
            special.setdefault(tok.map[0], []).append(Line(text=inline.content.strip(), heading_level=level))
            consumed.update(range(*tok.map))
        elif tok.type == "table_open" and tok.map:
            rows: list[list[str]] = []
            j = i + 1
            while tokens[j].type != "table_close":
                if tokens[j].type == "tr_open":
                    rows.append([])
                elif tokens[j].type == "inline" and rows:
                    rows[-1].append(tokens[j].content.strip())
                j += 1
            special.setdefault(tok.map[0], []).append(RawTable(rows=rows, page=1))
            consumed.update(range(*tok.map))
            i = j
        elif tok.type == "html_block" and tok.map and "<table" in tok.content.lower():
            tables, outside = _html_tables(tok.content)
            if tables:
                items: list[Line | RawTable] = [Line(text=t) for t in outside]
                items.extend(RawTable(rows=rows, page=1) for rows in tables)
                special.setdefault(tok.map[0], []).extend(items)
                consumed.update(range(*tok.map))
        elif tok.type == "hr" and tok.map:
            consumed.update(range(*tok.map))
        i += 1

    page = Page(number=1)
    for n, raw in enumerate(source):
        page.items.extend(special.get(n, []))
        if n in consumed or not raw.strip() or _RULE_LINE.match(raw):
            continue
        page.items.append(Line(text=raw.rstrip()))
    return page, title
