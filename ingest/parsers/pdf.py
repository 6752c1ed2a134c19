"""PDF: text lines with their vertical position, tables, and OCR for image-only pages.

pdfplumber (on pdfminer.six) gives text lines and ruled tables; pdfminer's layout analysis keeps
the columns of a two-column page apart, which plain y-clustering would splice into one line.
Image-only pages are rendered with pypdfium2 and read by the OCR engine. Pages are processed one
at a time and their caches dropped, so memory stays flat however long the document is.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pdfplumber
import pypdfium2 as pdfium
from pdfminer.pdfdocument import PDFEncryptionError, PDFPasswordIncorrect
from pdfplumber.page import Page as PlumberPage
from pdfplumber.table import Table as PlumberTable
from pdfplumber.utils.exceptions import PdfminerException

from ingest.config import IngestConfig, OcrConfig
from ingest.parsers.guards import sha256_file
from ingest.parsers.ocr import OcrEngine, boxes_to_lines, make_ocr_engine
from ingest.parsers.text import title_from_stem
from ingest.types import Line, Page, ParsedDocument, RawTable
from kgqa.errors import IngestError, KgqaError

# pdfminer defaults; boxes_flow orders text boxes column by column.
_LAPARAMS: dict[str, Any] = {"line_margin": 0.5, "char_margin": 2.0, "boxes_flow": 0.5}
# A ruled "table" spanning most of the page with mostly empty cells is a layout frame (broker
# reports draw their whole first page as one), not data: its text is kept as lines.
_FRAME_AREA = 0.5
_FRAME_FILL = 0.4
_GENERIC_TITLES = {"untitled", "无标题", "title", "document", "文档", "slide 1", "powerpoint presentation"}
_OFFICE_PREFIX = re.compile(r"^Microsoft (?:Word|PowerPoint|Excel) - ", re.IGNORECASE)
_FILE_SUFFIX = re.compile(r"\.(?:pdf|docx?|wps|txt|md|pptx?|xlsx?)$", re.IGNORECASE)


def pdf_title(metadata: dict[str, Any], path: Path) -> str:
    """The metadata title when it names the document, else a title from the file name.

    Producers fill ``/Title`` with junk often enough ("Microsoft Word - draft3.doc", "untitled",
    the output file name) that it is cleaned and sanity-checked before it can name a Document.
    """
    raw = metadata.get("Title")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="ignore")
    if isinstance(raw, str):
        title = _FILE_SUFFIX.sub("", _OFFICE_PREFIX.sub("", raw.strip().strip("\x00"))).strip()
        if len(title) >= 2 and any(ch.isalpha() for ch in title) and title.lower() not in _GENERIC_TITLES:
            return title
    return title_from_stem(path)


def needs_ocr(page: PlumberPage, config: OcrConfig) -> bool:
    """True when the text layer is too thin to trust and the page shows something to read.

    A page with almost no text but an image is a scan; a page with no text at all may carry its
    text as outlined vector paths, so it is rendered too. A page with nothing at all is blank and
    not worth seconds of OCR.
    """
    chars = sum(1 for c in page.chars if not c["text"].isspace())
    if chars >= config.min_text_chars:
        return False
    if page.images:
        return True
    return chars == 0 and any(page.objects.get(kind) for kind in ("rect", "curve", "line"))


def _join_cell(text: str | None) -> str:
    """A table cell's wrapped lines joined back (no space between CJK characters)."""
    if not text:
        return ""
    parts = [p.strip() for p in text.splitlines() if p.strip()]
    out = parts[0] if parts else ""
    for part in parts[1:]:
        sep = " " if out[-1].isascii() and part[0].isascii() else ""
        out += sep + part
    return out


def _is_data_table(table: PlumberTable, rows: list[list[str]], page: PlumberPage) -> bool:
    if len(rows) < 2 or max(len(r) for r in rows) < 2:
        return False
    cells = [c for r in rows for c in r]
    filled = sum(1 for c in cells if c) / len(cells)
    if filled == 0:
        return False
    x0, top, x1, bottom = table.bbox
    area = (x1 - x0) * (bottom - top) / (float(page.width) * float(page.height))
    return not (area > _FRAME_AREA and filled < _FRAME_FILL)


def _inside(obj: dict[str, Any], bbox: tuple[float, float, float, float]) -> bool:
    cx, cy = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
    return bbox[0] <= cx <= bbox[2] and bbox[1] <= cy <= bbox[3]


def _text_page(page: PlumberPage, number: int) -> Page:
    """Lines (pdfminer reading order) and data tables of one text-layer page."""
    y0, height = float(page.bbox[1]), float(page.height)
    tables: list[RawTable] = []
    bboxes = []
    # pdfplumber's default table finder works from ruling lines: no edges, no tables, and
    # skipping it saves a third of the time on plain text pages.
    has_edges = any(page.objects.get(kind) for kind in ("rect", "line", "curve"))
    for found in page.find_tables() if has_edges else []:
        rows = [[_join_cell(c) for c in row] for row in found.extract()]
        if _is_data_table(found, rows, page):
            bboxes.append(found.bbox)
            tables.append(
                RawTable(
                    rows=rows,
                    page=number,
                    top=(found.bbox[1] - y0) / height,
                    bottom=(found.bbox[3] - y0) / height,
                )
            )
    lines: list[Line] = []
    for obj in page.objects.get("textlinehorizontal", []):
        text = obj["text"].strip()  # indentation in a PDF is geometry; leading blanks are noise
        if text and not any(_inside(obj, b) for b in bboxes):
            lines.append(Line(text=text, top=(obj["top"] - y0) / height))
    # Tables go before the first line below their top edge, keeping them between the paragraphs
    # that surround them.
    items: list[Line | RawTable] = []
    pending = sorted(tables, key=lambda t: t.top or 0.0)
    for line in lines:
        while pending and (pending[0].top or 0.0) <= (line.top or 0.0):
            items.append(pending.pop(0))
        items.append(line)
    items.extend(pending)
    return Page(number=number, items=items)


def _damaged(path: Path, exc: BaseException, where: str = "") -> Exception:
    """Map pdfminer's many failure types to the two messages a user can act on.

    Running out of memory is not damage: it stays a MemoryError, which the worker reports with
    its limit (``truncated or damaged PDF`` sent users looking for a fault the file did not have).
    """
    inner = exc.args[0] if isinstance(exc, PdfminerException) and exc.args else exc
    if isinstance(inner, MemoryError):
        return inner
    if isinstance(inner, PDFPasswordIncorrect | PDFEncryptionError):
        return IngestError(path, "PDF is encrypted; remove the password and re-ingest")
    detail = str(inner).strip() or type(inner).__name__
    return IngestError(path, f"truncated or damaged PDF: {where}{detail}")


@contextmanager
def _open(path: Path) -> Iterator[pdfplumber.PDF]:
    try:
        pdf = pdfplumber.open(path, laparams=_LAPARAMS)
    except Exception as exc:  # pdfminer raises a dozen unrelated types on broken files
        raise _damaged(path, exc) from exc
    try:
        yield pdf
    finally:
        pdf.close()


class _OcrPages:
    """Renders pages with pypdfium2 (opened on first use) and reads them with the OCR engine.

    Every page is rendered at ``ocr.dpi`` unless that would exceed ``limits.max_page_pixels``; the
    scale is lowered *before* the bitmap is allocated. OCR time is charged against the per-page
    and per-file budgets, and the file is stopped as soon as one is exceeded or the pages read so
    far project past the file budget: a 1,999-page scan fails in seconds, not after an hour.
    """

    _PROJECT_AFTER = 3  # OCR pages measured before the per-file budget is projected

    def __init__(self, path: Path, config: IngestConfig, engine: OcrEngine | None) -> None:
        self._path = path
        self._config = config.ocr
        self._limits = config.limits
        self._engine = engine
        self._doc: pdfium.PdfDocument | None = None
        self.seconds = 0.0
        self.pages = 0
        self.warnings: list[str] = []

    def read(self, index: int, number: int) -> Page:
        if self._doc is None:
            try:
                self._doc = pdfium.PdfDocument(str(self._path))
            except pdfium.PdfiumError as exc:
                raise IngestError(self._path, f"truncated or damaged PDF: {exc}") from exc
        if self._engine is None:
            self._engine = make_ocr_engine(self._config)
        pdf_page = self._doc[index]
        try:
            scale = self._scale(pdf_page, number)
            image = pdf_page.render(scale=scale).to_pil()
        finally:
            pdf_page.close()
        started = time.perf_counter()
        boxes = self._engine.recognize(image)
        spent = time.perf_counter() - started
        self.seconds += spent
        self.pages += 1
        if spent > self._limits.ocr_page_budget_s:
            raise IngestError(
                self._path,
                f"page {number}: OCR took {spent:.1f} s, over the budget of "
                f"{self._limits.ocr_page_budget_s:g} s per page (KGQA_INGEST__LIMITS__OCR_PAGE_BUDGET_S); the file was stopped",
            )
        return Page(
            number=number,
            items=list(boxes_to_lines(boxes, image.height, self._config.min_confidence)),
            ocr=True,
        )

    def _scale(self, pdf_page: pdfium.PdfPage, number: int) -> float:
        width, height = pdf_page.get_size()  # points
        scale = self._config.dpi / 72
        area = max(width * height, 1.0)
        if area * scale * scale <= self._limits.max_page_pixels:
            return scale
        reduced = math.sqrt(self._limits.max_page_pixels / area)
        self.warnings.append(
            f"page {number}: {width / 72 * 25.4:.0f}×{height / 72 * 25.4:.0f} mm rendered for OCR at "
            f"{reduced * 72:.0f} dpi instead of {self._config.dpi} (limit "
            f"{self._limits.max_page_pixels / 1e6:g} Mpx per page)"
        )
        return reduced

    def check_budget(self, number: int, total: int) -> None:
        """Stop the file when OCR has spent, or is on course to spend, more than its budget."""
        budget = self._limits.ocr_file_budget_s
        if self.seconds > budget:
            raise IngestError(
                self._path,
                f"OCR spent {self.seconds:.0f} s on {self.pages} pages, over the budget of {budget:g} s "
                "per file (KGQA_INGEST__LIMITS__OCR_FILE_BUDGET_S); the file was stopped: split it or raise the budget",
            )
        if self.pages < self._PROJECT_AFTER or number >= total:
            return
        per_page = self.seconds / self.pages
        remaining = (total - number) * self.pages / number  # pages like those seen so far
        projected = self.seconds + per_page * remaining
        if projected > budget:
            raise IngestError(
                self._path,
                f"OCR would take about {projected:.0f} s for this {total}-page file "
                f"({per_page:.1f} s per page over the {self.pages} pages read so far), over the budget "
                f"of {budget:g} s per file (KGQA_INGEST__LIMITS__OCR_FILE_BUDGET_S); the file was stopped: split it "
                "or raise the budget",
            )

    def close(self) -> None:
        if self._doc is not None:
            self._doc.close()


def parse_pdf(path: Path, config: IngestConfig, ocr: OcrEngine | None = None) -> ParsedDocument:
    """Parse a PDF page by page; image-only pages go through OCR.

    Args:
        path: the PDF file (already size-checked and sniffed by :func:`ingest.parsers.parse_file`).
        config: limits and OCR settings.
        ocr: the pipeline's OCR engine; built from ``config.ocr`` on the first image-only page
            when None.

    Raises:
        IngestError: encrypted, truncated or damaged PDF, or more pages than ``limits.max_pages``.
    """
    warnings: list[str] = []
    pages: list[Page] = []
    ocr_pages = _OcrPages(path, config, ocr)
    with _open(path) as pdf:
        try:
            count = len(pdf.pages)
            title = pdf_title(pdf.metadata or {}, path)
        except Exception as exc:
            raise _damaged(path, exc) from exc
        if count == 0:
            raise IngestError(path, "PDF has no pages")
        if count > config.limits.max_pages:
            raise IngestError(
                path,
                f"PDF has {count} pages (limit {config.limits.max_pages}); split it or raise limits.max_pages",
            )
        try:
            for index, page in enumerate(pdf.pages):
                number = index + 1
                try:
                    if needs_ocr(page, config.ocr):
                        pages.append(ocr_pages.read(index, number))
                        ocr_pages.check_budget(number, count)
                    else:
                        pages.append(_text_page(page, number))
                except KgqaError:
                    raise
                except Exception as exc:
                    raise _damaged(path, exc, where=f"page {number}: ") from exc
                finally:
                    page.close()  # drops pdfplumber's per-page object and layout caches
        finally:
            ocr_pages.close()
    warnings.extend(ocr_pages.warnings)
    return ParsedDocument(
        source_path=path, kind="pdf", title=title, pages=pages, sha256=sha256_file(path), warnings=warnings
    )
