"""DOCX: body paragraphs and tables in document order, headings from styles and outline levels.

python-docx's ``document.paragraphs`` and ``document.tables`` are two separate lists, which would
lose where each table sits; the body element is walked instead. Paragraph text is collected from
the XML directly because ``Paragraph.text`` skips content controls (``w:sdt``), where contract
templates keep amounts and party names. Headers and footers live in their own parts and are never
read; a table of contents is skipped (it repeats the headings with page numbers).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import docx
from docx.document import Document as DocxDocument
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.exceptions import PackageNotFoundError
from docx.oxml.ns import qn
from docx.styles.style import BaseStyle
from lxml import etree

from ingest.config import IngestConfig
from ingest.parsers.guards import check_zip_expansion, sha256_file
from ingest.parsers.text import title_from_stem
from ingest.types import Line, Page, ParsedDocument, RawTable
from kgqa.errors import IngestError

_XML_ERR_NO_MEMORY = 2  # libxml2's xmlParserErrors code
_HEADING_STYLE = re.compile(r"^(?:heading|标题)\s*(\d)$", re.IGNORECASE)
_MC_FALLBACK = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
_W_P, _W_TBL, _W_SDT, _W_TR, _W_TC = qn("w:p"), qn("w:tbl"), qn("w:sdt"), qn("w:tr"), qn("w:tc")
_W_T, _W_TAB, _W_BR, _W_CR = qn("w:t"), qn("w:tab"), qn("w:br"), qn("w:cr")
_W_NBHYPHEN = qn("w:noBreakHyphen")
_CONTAINERS = {qn("w:sdtContent"), qn("w:customXml"), qn("w:ins"), qn("w:smartTag")}


def _open_checked(path: Path, config: IngestConfig) -> DocxDocument:
    """Check the zip container (bomb, missing parts) before python-docx decompresses anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            check_zip_expansion(path, archive, config.limits)
            if "word/document.xml" not in archive.namelist():
                raise IngestError(
                    path, "DOCX has no word/document.xml: not a Word document (a renamed .xlsx or .pptx?)"
                )
    except zipfile.BadZipFile as exc:
        raise IngestError(path, f"DOCX is not a valid zip archive: {exc}") from exc
    try:
        return docx.Document(str(path))
    except etree.XMLSyntaxError as exc:
        if exc.code == _XML_ERR_NO_MEMORY:  # libxml2 ran out of memory: not damage (the worker reports it)
            raise MemoryError("libxml2 could not allocate memory while parsing the DOCX") from exc
        raise IngestError(path, f"DOCX is damaged: {exc}") from exc
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise IngestError(path, f"DOCX is damaged: {exc}") from exc


def _text(elm: etree._Element) -> str:
    """Visible text under an element in document order (runs, hyperlinks, content controls).

    ``mc:Fallback`` holds a second copy of text boxes for old readers and is skipped; deleted
    revisions live in ``w:delText`` and are never collected.
    """
    out: list[str] = []
    for node in elm.iter():
        tag = node.tag
        if tag == _W_T:
            if not any(a.tag == _MC_FALLBACK for a in node.iterancestors()):
                out.append(node.text or "")
        elif tag == _W_TAB:
            if node.getparent() is not None and node.getparent().tag == qn("w:r"):
                out.append("\t")
        elif tag in (_W_BR, _W_CR):
            out.append("\n")
        elif tag == _W_NBHYPHEN:
            out.append("-")
    return "".join(out)


def _is_toc(sdt: etree._Element) -> bool:
    gallery = sdt.find(f"{qn('w:sdtPr')}/{qn('w:docPartObj')}/{qn('w:docPartGallery')}")
    return gallery is not None and "contents" in (gallery.get(qn("w:val")) or "").lower()


def _blocks(parent: etree._Element) -> Iterator[etree._Element]:
    """Body-level paragraphs and tables in order, looking through content controls."""
    for child in parent.iterchildren():
        if child.tag in (_W_P, _W_TBL):
            yield child
        elif child.tag == _W_SDT:
            if not _is_toc(child):
                content = child.find(qn("w:sdtContent"))
                if content is not None:
                    yield from _blocks(content)
        elif child.tag in _CONTAINERS:
            yield from _blocks(child)


def _outline_level(ppr: etree._Element | None) -> int | None:
    if ppr is None:
        return None
    node = ppr.find(qn("w:outlineLvl"))
    if node is None:
        return None
    value = node.get(qn("w:val"), "")
    return int(value) if value.isdigit() else None


def _style_level(style: BaseStyle | None) -> int | None:
    """Heading level from the style's name or (inherited) outline level; 9 means body text."""
    seen = 0
    while style is not None and seen < 10:
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 1
        match = _HEADING_STYLE.match(name)
        if match:
            return int(match.group(1))
        level = _outline_level(style.element.find(qn("w:pPr")))
        if level is not None:
            return level + 1 if level < 9 else None
        style, seen = style.base_style, seen + 1
    return None


class _Styles:
    """Style-id -> heading level, resolved once per document."""

    def __init__(self, document: DocxDocument) -> None:
        self._by_id = {s.style_id: s for s in document.styles}
        self._levels: dict[str, int | None] = {}
        default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
        self._default = default.style_id if default is not None else None

    def style_id(self, p: etree._Element) -> str | None:
        node = p.find(f"{qn('w:pPr')}/{qn('w:pStyle')}")
        return node.get(qn("w:val")) if node is not None else self._default

    def name(self, p: etree._Element) -> str:
        style = self._by_id.get(self.style_id(p) or "")
        return (style.name or "") if style is not None else ""

    def level(self, p: etree._Element) -> int | None:
        direct = _outline_level(p.find(qn("w:pPr")))
        if direct is not None:
            return direct + 1 if direct < 9 else None
        sid = self.style_id(p)
        if sid is None:
            return None
        if sid not in self._levels:
            self._levels[sid] = _style_level(self._by_id.get(sid))
        return self._levels[sid]


def _cell_text(tc: etree._Element) -> str:
    parts: list[str] = []
    for child in tc.iterchildren():
        if child.tag == _W_P:
            text = _text(child).strip()
            if text:
                parts.append(text)
        elif child.tag == _W_TBL:  # a table inside a cell keeps its text, row by row
            parts.extend(" ".join(c for c in row if c) for row in _table_rows(child) if any(row))
        elif child.tag == _W_SDT:
            parts.append(_text(child).strip())
    return "\n".join(p for p in parts if p)


def _table_rows(tbl: etree._Element) -> list[list[str]]:
    """Rows of cell text on the table grid.

    A merged cell's text appears once, at its top-left grid position; the other positions it
    covers (``gridSpan`` to the right, ``vMerge`` continuations below) are empty strings, the
    same convention as pdfplumber's tables, so columns stay aligned with the header row.
    """
    rows: list[list[str]] = []
    for tr in tbl.iterchildren(_W_TR):
        row: list[str] = []
        before = tr.find(f"{qn('w:trPr')}/{qn('w:gridBefore')}")
        if before is not None and (before.get(qn("w:val")) or "").isdigit():
            row.extend([""] * int(before.get(qn("w:val"))))
        for tc in tr.iterchildren(_W_TC):
            span = tc.grid_span if hasattr(tc, "grid_span") else 1
            merged = getattr(tc, "vMerge", None) == "continue"
            row.append("" if merged else _cell_text(tc))
            row.extend([""] * (span - 1))
        rows.append(row)
    width = max((len(r) for r in rows), default=0)
    return [r + [""] * (width - len(r)) for r in rows]


def _core_title(document: DocxDocument) -> str | None:
    title = (document.core_properties.title or "").strip()
    return title or None


def parse_docx(path: Path, config: IngestConfig) -> ParsedDocument:
    """Parse a DOCX into one page of lines (with heading levels) and tables, in body order.

    The title is the first ``Title``-style paragraph, else the first level-1 heading, else the
    core-properties title, else the file name.

    Raises:
        IngestError: not a zip, a zip bomb, not a Word document, or damaged XML.
    """
    document = _open_checked(path, config)
    styles = _Styles(document)
    page = Page(number=1)
    title_style: str | None = None
    first_h1: str | None = None
    for block in _blocks(document.element.body):
        if block.tag == _W_TBL:
            rows = _table_rows(block)
            if any(any(cell for cell in row) for row in rows):
                page.items.append(RawTable(rows=rows, page=1))
            continue
        text = _text(block).rstrip()
        if not text.strip():
            continue
        level = styles.level(block)
        if level is not None:
            text = text.strip()
            if title_style is None and styles.name(block).lower() == "title":
                title_style = text
            elif first_h1 is None and level == 1:
                first_h1 = text
        page.items.append(Line(text=text, heading_level=level))
    title = title_style or first_h1 or _core_title(document) or title_from_stem(path)
    return ParsedDocument(
        source_path=path, kind="docx", title=title, pages=[page], sha256=sha256_file(path), warnings=[]
    )
