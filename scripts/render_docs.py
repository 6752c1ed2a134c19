"""Render a Markdown manual into the formats the ingestion pipeline reads: PDF, scanned PDF and DOCX.

The real manuals arrive as PDFs with running headers and page-numbered footers, as scans without a
text layer, and as Word files with section headers. We cannot ship the client's files, so tests and
``samples/`` render our own fictional Markdown into the same shapes. Every artefact the cleaner must
remove (headers, footers, a blank page) or the parser must keep (tables split across pages, CJK
paragraphs) is produced here on purpose, and deterministically, so that rendered files can be
committed and tests can compare bytes.

CLI::

    python -m scripts.render_docs SRC.md --pdf OUT.pdf --docx OUT.docx [--header TEXT] [--footer TEXT]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from kgqa.errors import ConfigError

DEFAULT_FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
DEFAULT_FOOTER = "第 {page} 页 共 {pages} 页"
FONT_NAME = "wqy"
#: Fixed timestamp for DOCX metadata and zip entries, so renders are byte-for-byte reproducible.
FIXED_TIME = dt.datetime(2025, 1, 1, 0, 0, 0)

_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FOOTER_FIELD = re.compile(r"\{(page|pages)\}")


@dataclass(frozen=True)
class Block:
    """One rendered unit of the manual.

    Attributes:
        kind: ``"heading"``, ``"paragraph"`` or ``"table"``.
        text: Heading or paragraph text (empty for tables).
        level: Heading level 1-3 (deeper Markdown levels are clamped to 3); 0 otherwise.
        rows: Table cells, header row first; empty for non-tables.
    """

    kind: str
    text: str = ""
    level: int = 0
    rows: tuple[tuple[str, ...], ...] = ()


def parse_markdown(markdown: str) -> list[Block]:
    """Split the small Markdown subset our manuals use into blocks.

    Only ATX headings, paragraphs and pipe tables are understood: that is all the manuals need, and
    a tiny parser keeps the renderers' output easy to predict. Consecutive lines of a paragraph are
    joined without a space because the text is Chinese; ``**bold**`` markers are dropped.

    Args:
        markdown: The manual's Markdown source.

    Returns:
        The blocks in document order.
    """
    blocks: list[Block] = []
    lines = markdown.splitlines()
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            blocks.append(Block("paragraph", text="".join(paragraph)))
            paragraph.clear()

    i = 0
    while i < len(lines):
        line = lines[i].strip()
        heading = _HEADING.match(line)
        if not line:
            flush()
        elif heading:
            flush()
            blocks.append(
                Block("heading", text=_inline(heading.group(2)), level=min(len(heading.group(1)), 3))
            )
        elif line.startswith("|") and i + 1 < len(lines) and _TABLE_SEPARATOR.match(lines[i + 1].strip()):
            flush()
            rows = [_split_row(line)]
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(_split_row(lines[i].strip()))
                i += 1
            width = len(rows[0])
            padded = tuple(tuple((row + [""] * width)[:width]) for row in rows)
            blocks.append(Block("table", rows=padded))
            continue
        else:
            paragraph.append(_inline(line))
        i += 1
    flush()
    return blocks


def _split_row(line: str) -> list[str]:
    cells = line.strip().strip("|").split("|")
    return [_inline(cell.strip()) for cell in cells]


def _inline(text: str) -> str:
    return text.replace("**", "").replace("__", "")


def _plant(blocks: list[Block], personal_data: list[str] | None) -> list[Block]:
    """Append planted personal-data lines to body paragraphs.

    Line *i* goes to the end of the *i*-th paragraph (headings and tables skipped); surplus lines go
    to the last paragraph. Mixing them into clause text, rather than isolating them, is what the
    redactor meets in real manuals ("联系人：…，电话…").
    """
    if not personal_data:
        return blocks
    para_idx = [i for i, b in enumerate(blocks) if b.kind == "paragraph"]
    if not para_idx:
        raise ValueError("personal_data needs at least one paragraph to be planted in")
    out = list(blocks)
    for n, line in enumerate(personal_data):
        target = para_idx[min(n, len(para_idx) - 1)]
        out[target] = Block("paragraph", text=out[target].text + line)
    return out


# --------------------------------------------------------------------------------------------- PDF


def _register_font(font_path: Path) -> None:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    if not Path(font_path).is_file():
        raise ConfigError(
            f"Chinese font not found at {font_path}; install Debian's fonts-wqy-microhei "
            "(apt-get install fonts-wqy-microhei) or pass font_path"
        )
    if FONT_NAME in pdfmetrics.getRegisteredFontNames():
        return
    pdfmetrics.registerFont(TTFont(FONT_NAME, str(font_path), subfontIndex=0))


def _styles() -> dict[str, object]:
    from reportlab.lib.enums import TA_CENTER
    from reportlab.lib.styles import ParagraphStyle

    body = ParagraphStyle(
        "body",
        fontName=FONT_NAME,
        fontSize=10.5,
        leading=17,
        wordWrap="CJK",
        firstLineIndent=21,
        spaceAfter=4,
    )
    return {
        "body": body,
        "cell": ParagraphStyle(
            "cell", parent=body, fontSize=9.5, leading=13, firstLineIndent=0, spaceAfter=0
        ),
        1: ParagraphStyle(
            "h1", parent=body, fontSize=18, leading=26, alignment=TA_CENTER, firstLineIndent=0, spaceAfter=14
        ),
        2: ParagraphStyle(
            "h2",
            parent=body,
            fontSize=14,
            leading=22,
            alignment=TA_CENTER,
            firstLineIndent=0,
            spaceBefore=10,
            spaceAfter=8,
        ),
        3: ParagraphStyle(
            "h3",
            parent=body,
            fontSize=12,
            leading=19,
            alignment=TA_CENTER,
            firstLineIndent=0,
            spaceBefore=6,
            spaceAfter=6,
        ),
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _column_widths(rows: Iterable[tuple[str, ...]], total: float, font_size: float = 9.5) -> list[float]:
    """Size columns by their longest cell, so short columns neither wrap nor waste space.

    Each column's natural width is its longest cell on one line plus cell padding; when the natural
    widths fit, the spare width is shared in proportion, otherwise long columns are capped so that
    they wrap instead of squeezing the short ones.
    """
    rows = list(rows)
    ncols = len(rows[0])
    padding = 12.0
    longest = [
        max(sum(1.0 if ord(ch) > 0x2E7F else 0.55 for ch in row[c]) for row in rows) for c in range(ncols)
    ]
    natural = [max(w, 2.0) * font_size + padding for w in longest]
    if sum(natural) <= total:
        return [total * w / sum(natural) for w in natural]
    cap = total / ncols
    short = [w for w in natural if w <= cap]
    long_count = ncols - len(short)
    if short and long_count and sum(short) < total:
        share = (total - sum(short)) / sum(w for w in natural if w > cap)
        return [w if w <= cap else w * share for w in natural]
    return [total * w / sum(natural) for w in natural]


def _story(blocks: list[Block], width: float) -> list[object]:
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    styles = _styles()
    story: list[object] = []
    for block in blocks:
        if block.kind == "heading":
            story.append(Paragraph(_escape(block.text), styles[block.level]))
        elif block.kind == "paragraph":
            story.append(Paragraph(_escape(block.text), styles["body"]))
        else:
            cells = [[Paragraph(_escape(c), styles["cell"]) for c in row] for row in block.rows]
            table = Table(
                cells,
                colWidths=_column_widths(block.rows, width),
                repeatRows=1,
                hAlign="CENTER",
                spaceBefore=4,
                spaceAfter=8,
            )
            table.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.6, colors.black),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#E8E8E8")),
                        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                    ]
                )
            )
            story.append(table)
    return story


def _page_decorator(
    header: str | None, footer: str | None, pages: int | None, blank_page_after: int | None
) -> Callable[[object, object], None]:
    """Build the onPage callback drawing header and footer, and inserting the blank page.

    The blank page is produced when page ``blank_page_after + 1`` begins: we decorate it, close it
    empty with ``showPage`` and decorate the next one, on which the flowables then land. This puts
    the blank page exactly after page N without knowing in advance which flowable ends page N.
    """
    from reportlab.lib.units import mm

    def decorate(canv, doc) -> None:  # noqa: ANN001 - reportlab callback signature
        page_w, page_h = doc.pagesize
        number = canv.getPageNumber()
        canv.saveState()
        canv.setFont(FONT_NAME, 9)
        if header:
            canv.drawCentredString(page_w / 2, page_h - 15 * mm, header)
            canv.setLineWidth(0.5)
            canv.line(doc.leftMargin, page_h - 17 * mm, page_w - doc.rightMargin, page_h - 17 * mm)
        if footer:
            text = footer.replace("{page}", str(number)).replace("{pages}", str(pages if pages else "?"))
            canv.drawCentredString(page_w / 2, 12 * mm, text)
        canv.restoreState()

    def on_page(canv, doc) -> None:  # noqa: ANN001 - reportlab callback signature
        decorate(canv, doc)
        if blank_page_after is not None and canv.getPageNumber() == blank_page_after + 1:
            canv.showPage()
            doc.page += 1
            decorate(canv, doc)

    return on_page


def render_pdf(
    markdown: str,
    out: Path,
    *,
    header: str | None = None,
    footer: str | None = DEFAULT_FOOTER,
    blank_page_after: int | None = None,
    personal_data: list[str] | None = None,
    font_path: Path = DEFAULT_FONT_PATH,
) -> None:
    """Render a Markdown manual to an A4 text-layer PDF shaped like the client's manuals.

    The document is built twice: the first pass only counts pages so that the footer can say
    "共 M 页". ``invariant=1`` makes reportlab omit dates and random ids, so output is reproducible.

    Args:
        markdown: Manual source (headings, paragraphs, pipe tables).
        out: Destination PDF path; parent directories are created.
        header: Running header drawn at the top of every page, or None for none.
        footer: Footer template drawn at the bottom; ``{page}`` and ``{pages}`` are replaced. None
            for no footer.
        blank_page_after: If set, a page carrying only header and footer follows page N (only when
            the content runs past page N).
        personal_data: Lines appended to the first paragraphs (line i to paragraph i) to plant
            fictional personal data for redaction tests.
        font_path: TrueType collection with CJK glyphs (subfont 0 is used).

    Raises:
        ConfigError: The CJK font is missing.
    """
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    _register_font(font_path)
    blocks = _plant(parse_markdown(markdown), personal_data)
    title = next((b.text for b in blocks if b.kind == "heading"), "")

    def build(target: io.BytesIO | Path, pages: int | None) -> int:
        doc = SimpleDocTemplate(
            str(target) if isinstance(target, Path) else target,
            pagesize=A4,
            leftMargin=25 * mm,
            rightMargin=25 * mm,
            topMargin=25 * mm,
            bottomMargin=22 * mm,
            title=title,
            author="kgqa samples",
            creator="kgqa scripts.render_docs",
            producer="ReportLab",
            invariant=1,
        )
        on_page = _page_decorator(header, footer, pages, blank_page_after)
        doc.build(_story(blocks, doc.width), onFirstPage=on_page, onLaterPages=on_page)
        return doc.page

    total = build(io.BytesIO(), None)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    build(out, total)


def render_scanned_pdf(pdf_in: Path, pdf_out: Path, dpi: int = 150) -> None:
    """Rasterize every page of ``pdf_in`` into an image-only PDF, as a scanner would.

    Pages become greyscale JPEGs drawn full-page at the original page size, so the result has no
    text layer at all and OCR is the only way back to the text.

    Args:
        pdf_in: Source PDF with a text layer.
        pdf_out: Destination image-only PDF.
        dpi: Rasterization resolution; 150 is enough for OCR and keeps files small.
    """
    import pypdfium2 as pdfium
    from reportlab import rl_config
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    pdf_out = Path(pdf_out)
    pdf_out.parent.mkdir(parents=True, exist_ok=True)
    source = pdfium.PdfDocument(str(pdf_in))
    # ASCII85 would inflate the embedded JPEGs by a quarter for no benefit in a binary file.
    use_a85, rl_config.useA85 = rl_config.useA85, 0
    try:
        canv = canvas.Canvas(str(pdf_out), invariant=1)
        for page in source:
            width, height = page.get_size()
            image = page.render(scale=dpi / 72).to_pil().convert("L")
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=70)
            buffer.seek(0)
            canv.setPageSize((width, height))
            canv.drawImage(ImageReader(buffer), 0, 0, width=width, height=height)
            canv.showPage()
            page.close()
        canv.save()
    finally:
        rl_config.useA85 = use_a85
        source.close()


# -------------------------------------------------------------------------------------------- DOCX


def _set_east_asian_font(style, name: str) -> None:  # noqa: ANN001 - python-docx style object
    from docx.oxml.ns import qn

    style.font.name = name
    rpr = style.element.get_or_add_rPr()
    rfonts = rpr.find(qn("w:rFonts"))
    if rfonts is None:
        rfonts = rpr.makeelement(qn("w:rFonts"), {})
        rpr.append(rfonts)
    rfonts.set(qn("w:eastAsia"), name)


def _add_field(paragraph, instruction: str) -> None:  # noqa: ANN001 - python-docx paragraph
    """Insert a Word field (PAGE, NUMPAGES) so Word computes page numbers itself."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, instruction), ("separate", None), (None, "1"), ("end", None)):
        if kind:
            el = OxmlElement("w:fldChar")
            el.set(qn("w:fldCharType"), kind)
        elif text == instruction:
            el = OxmlElement("w:instrText")
            el.set(qn("xml:space"), "preserve")
            el.text = f" {instruction} "
        else:
            el = OxmlElement("w:t")
            el.text = text
        run._r.append(el)


def _fill_footer(paragraph, footer: str) -> None:  # noqa: ANN001 - python-docx paragraph
    pos = 0
    for match in _FOOTER_FIELD.finditer(footer):
        if match.start() > pos:
            paragraph.add_run(footer[pos : match.start()])
        _add_field(paragraph, "PAGE" if match.group(1) == "page" else "NUMPAGES")
        pos = match.end()
    if pos < len(footer):
        paragraph.add_run(footer[pos:])


def _repeat_header_row(table) -> None:  # noqa: ANN001 - python-docx table
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    flag = OxmlElement("w:tblHeader")
    flag.set(qn("w:val"), "true")
    tr_pr.append(flag)


def _normalize_zip(data: bytes) -> bytes:
    """Rewrite a DOCX zip with fixed entry timestamps; python-docx stamps each entry with 'now'."""
    src = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, src.read(info.filename))
    return buffer.getvalue()


def render_docx(
    markdown: str,
    out: Path,
    *,
    header: str | None,
    footer: str | None,
    personal_data: list[str] | None = None,
) -> None:
    """Render a Markdown manual to a Word document with real headings, tables, header and footer.

    Headings use the built-in "Heading 1/2/3" styles (what DOCX parsers key on), tables use
    "Table Grid" with the header row marked to repeat, and header/footer live in the section's
    header/footer parts, which parsers must ignore. Metadata and zip timestamps are fixed.

    Args:
        markdown: Manual source (headings, paragraphs, pipe tables).
        out: Destination .docx path; parent directories are created.
        header: Section header text, or None.
        footer: Section footer template; ``{page}``/``{pages}`` become PAGE/NUMPAGES fields. None for none.
        personal_data: As for :func:`render_pdf`.
    """
    from docx import Document
    from docx.shared import Pt

    blocks = _plant(parse_markdown(markdown), personal_data)
    doc = Document()
    _set_east_asian_font(doc.styles["Normal"], "Microsoft YaHei")
    doc.styles["Normal"].font.size = Pt(10.5)
    for level in (1, 2, 3):
        _set_east_asian_font(doc.styles[f"Heading {level}"], "Microsoft YaHei")

    for block in blocks:
        if block.kind == "heading":
            doc.add_heading(block.text, level=block.level)
        elif block.kind == "paragraph":
            doc.add_paragraph(block.text)
        else:
            table = doc.add_table(rows=len(block.rows), cols=len(block.rows[0]))
            table.style = doc.styles["Table Grid"]
            for r, row in enumerate(block.rows):
                for c, text in enumerate(row):
                    table.cell(r, c).text = text
            _repeat_header_row(table)

    section = doc.sections[0]
    if header:
        section.header.paragraphs[0].text = header
    if footer:
        _fill_footer(section.footer.paragraphs[0], footer)

    title = next((b.text for b in blocks if b.kind == "heading"), "")
    props = doc.core_properties
    props.title = title
    props.author = "kgqa samples"
    props.last_modified_by = "kgqa samples"
    props.created = props.modified = props.last_printed = FIXED_TIME
    props.revision = 1

    buffer = io.BytesIO()
    doc.save(buffer)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(_normalize_zip(buffer.getvalue()))


# --------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m scripts.render_docs", description=__doc__.splitlines()[0]
    )
    parser.add_argument("source", type=Path, help="Markdown manual to render")
    parser.add_argument("--pdf", type=Path, help="write a text-layer PDF here")
    parser.add_argument("--scanned-pdf", type=Path, help="also write an image-only PDF (needs --pdf)")
    parser.add_argument("--docx", type=Path, help="write a DOCX here")
    parser.add_argument("--header", default=None, help="running header text")
    parser.add_argument("--footer", default=DEFAULT_FOOTER, help="footer template with {page} and {pages}")
    parser.add_argument("--blank-page-after", type=int, default=None, help="insert a blank page after page N")
    args = parser.parse_args(argv)
    if not (args.pdf or args.docx):
        parser.error("give --pdf and/or --docx")
    if args.scanned_pdf and not args.pdf:
        parser.error("--scanned-pdf needs --pdf")
    markdown = args.source.read_text(encoding="utf-8")
    if args.pdf:
        render_pdf(
            markdown, args.pdf, header=args.header, footer=args.footer, blank_page_after=args.blank_page_after
        )
        if args.scanned_pdf:
            render_scanned_pdf(args.pdf, args.scanned_pdf)
    if args.docx:
        render_docx(markdown, args.docx, header=args.header, footer=args.footer)


if __name__ == "__main__":
    main()
