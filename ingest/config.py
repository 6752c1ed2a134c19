"""Configuration of the ingestion pipeline.

Dataclasses (pydantic's, so values are validated and converted when built) that ``ingest`` takes
through constructors. ``kgqa.settings`` nests :class:`IngestConfig` as ``Settings.ingest``: each
field is settable as ``KGQA_INGEST__<SECTION>__<FIELD>`` (``KGQA_INGEST__CHUNK__TARGET_CHARS=300``,
``KGQA_INGEST__LIMITS__MAX_FILE_BYTES=500MiB``) or in ``kgqa.toml``, and the defaults here are the
only ones.
"""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from pydantic import ByteSize
from pydantic.dataclasses import dataclass


@dataclass
class OcrConfig:
    """OCR of image-only pages.

    Attributes:
        backend: ``rapidocr`` (PP-OCR models bundled in the wheel, works offline) or ``paddleocr``
            (used when the package and its models are installed).
        min_text_chars: a PDF page whose text layer has fewer non-space characters than this is
            treated as image-only and sent to OCR.
        dpi: rendering resolution for OCR; 200 balances accuracy against time on 2 cores.
        min_confidence: recognised lines below this score are dropped as noise.
    """

    backend: Literal["rapidocr", "paddleocr"] = "rapidocr"
    min_text_chars: int = 10
    dpi: int = 200
    min_confidence: float = 0.5


@dataclass
class CleanConfig:
    """Header/footer and debris removal.

    Attributes:
        band: share of the page height at top and bottom where running headers/footers live.
        min_repeat_ratio: a line counts as running header/footer when a similar line sits in the
            same band on at least this share of pages (and at least ``min_repeat_pages``).
        min_repeat_pages: absolute floor for the repetition test, so short documents are not
            stripped of real first lines.
        similarity: rapidfuzz ratio (0-100) above which two band lines are "the same" once digits
            are masked (page numbers inside headers differ page to page).
        blank_page_chars: a page with fewer meaningful characters than this after cleaning is blank.
    """

    band: float = 0.12
    min_repeat_ratio: float = 0.5
    min_repeat_pages: int = 3
    similarity: float = 85.0
    blank_page_chars: int = 5


@dataclass
class RedactConfig:
    """Personal-data redaction. ``extra_patterns`` maps a placeholder label to a regex."""

    extra_patterns: dict[str, str] = field(default_factory=dict)


@dataclass
class ChunkConfig:
    """Recursive chunking of long clauses (characters, not tokens: Chinese is ~1 char/token)."""

    target_chars: int = 500
    min_chars: int = 100
    max_chars: int = 800


@dataclass
class LimitsConfig:
    """Bounds that keep one hostile or huge file from exhausting memory or time.

    Sizes are checked before anything is decompressed or rendered; the worker process that parses
    each file (:mod:`ingest.worker`) enforces the memory cap and the deadline on whatever gets past
    them, so one file fails with its reason and the rest of the batch goes on.

    Sizes are bytes; from settings they may carry a unit (``200MiB``, ``64MB``).

    Attributes:
        max_file_bytes: largest file accepted at all.
        max_pages: most pages of a PDF.
        max_docx_uncompressed_bytes: most bytes a DOCX may expand to (images included), from the
            zip's central directory, before anything is inflated.
        max_docx_xml_bytes: most bytes one XML part of a DOCX (``word/document.xml``) may expand to.
            Parsed XML takes ~20 times its size in memory (a 290 MB part took 6.2 GB), while a
            1,000-page manual's document.xml is ~20 MB.
        max_docx_compression_ratio: most a member larger than 1 MB may be compressed (zip bombs).
        max_page_pixels: most pixels one PDF page is rendered to for OCR; a bigger page (a
            14,400 pt poster is 40,000 px square at 200 dpi, 6 GB) is rendered at a lower
            resolution instead. 25 Mpx is an A2 sheet at 200 dpi.
        parse_timeout_s: wall-clock deadline for parsing one file; the worker is killed past it.
        parse_memory_mb: address-space cap (RLIMIT_AS) of the worker process; OCR with the bundled
            PP-OCR models peaks at ~2.2 GB of address space.
        ocr_page_budget_s: most seconds OCR may spend on one page before the file is stopped; a
            normal page takes 0.5-10 s, and a contended 2-core machine was seen at 54 s.
        ocr_file_budget_s: most seconds OCR may spend on one file; the file is stopped as soon as
            the pages read so far project past it, not only once it is spent.
    """

    max_file_bytes: ByteSize = ByteSize(200 * 1024 * 1024)
    max_pages: int = 2000
    max_docx_uncompressed_bytes: ByteSize = ByteSize(300 * 1024 * 1024)
    max_docx_xml_bytes: ByteSize = ByteSize(64 * 1024 * 1024)
    max_docx_compression_ratio: float = 200.0
    max_page_pixels: int = 25_000_000
    parse_timeout_s: float = 900.0
    parse_memory_mb: int = 4096
    ocr_page_budget_s: float = 120.0
    ocr_file_budget_s: float = 600.0


@dataclass
class IngestConfig:
    """Everything the pipeline needs, grouped per stage."""

    ocr: OcrConfig = field(default_factory=OcrConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    redact: RedactConfig = field(default_factory=RedactConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
