"""File parsers: one entry point, :func:`parse_file`, for every format kgqa reads.

The extension picks the parser, but the content decides whether it may run: a PNG renamed to
``.pdf`` or an Excel file renamed to ``.docx`` gets a sentence saying what it really is instead
of a stack trace from deep inside pdfminer or python-docx.
"""

from __future__ import annotations

from pathlib import Path

from ingest.config import IngestConfig
from ingest.parsers.guards import (
    check_size,
    expect_pdf,
    expect_zip,
    read_head,
    refuse_binary_text,
    sha256_file,
)
from ingest.parsers.ocr import OcrBox, OcrEngine, make_ocr_engine
from ingest.parsers.text import decode_text, parse_markdown_text, parse_txt_text, title_from_stem
from ingest.types import ParsedDocument
from kgqa.errors import UnsupportedFormat

SUPPORTED_SUFFIXES = {".pdf", ".docx", ".txt", ".md", ".markdown"}

__all__ = ["SUPPORTED_SUFFIXES", "OcrBox", "OcrEngine", "make_ocr_engine", "parse_file"]


def _parse_text(path: Path, markdown: bool) -> ParsedDocument:
    data = path.read_bytes()
    refuse_binary_text(path, data[:64])
    text, encoding = decode_text(path, data)
    warnings = [] if encoding.startswith("utf") else [f"decoded as {encoding}"]
    if markdown:
        page, heading = parse_markdown_text(text)
        title = heading or title_from_stem(path)
    else:
        page, title = parse_txt_text(text), title_from_stem(path)
    return ParsedDocument(
        source_path=path,
        kind="md" if markdown else "txt",
        title=title,
        pages=[page],
        sha256=sha256_file(path),
        warnings=warnings,
    )


def parse_file(
    path: Path, config: IngestConfig | None = None, *, ocr: OcrEngine | None = None
) -> ParsedDocument:
    """Parse one file into pages of lines and tables, before any cleaning.

    Args:
        path: a ``.pdf``, ``.docx``, ``.txt``, ``.md`` or ``.markdown`` file.
        config: limits and OCR settings (defaults when None).
        ocr: the OCR engine for image-only PDF pages; the pipeline passes one shared engine (it
            is expensive to build). When None, one is built from ``config.ocr`` only if a page
            needs it.

    Raises:
        UnsupportedFormat: the extension is not one kgqa reads.
        IngestError: the file is empty, too big, not what its extension says, encrypted,
            damaged, a zip bomb or undecodable; the message names the file and the reason.
    """
    path = Path(path)
    config = config or IngestConfig()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFormat(
            path, f"unsupported file type '{path.suffix or '(none)'}' (supported: {supported})"
        )
    check_size(path, config.limits)
    head = read_head(path)
    if suffix == ".pdf":
        from ingest.parsers.pdf import parse_pdf

        expect_pdf(path, head)
        return parse_pdf(path, config, ocr)
    if suffix == ".docx":
        from ingest.parsers.docx import parse_docx

        expect_zip(path, head)
        return parse_docx(path, config)
    return _parse_text(path, markdown=suffix in (".md", ".markdown"))
