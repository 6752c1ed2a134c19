"""Configuration of the ingestion pipeline.

Plain dataclasses so ``ingest`` stays free of settings machinery: ``kgqa.settings`` fills them
from ``KGQA_*`` variables or ``kgqa.toml`` and passes them in through constructors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


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
    """Bounds that keep one hostile or huge file from exhausting memory or time."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_pages: int = 2000
    max_docx_uncompressed_bytes: int = 300 * 1024 * 1024
    max_docx_compression_ratio: float = 200.0
    ocr_timeout_s: float = 120.0


@dataclass
class IngestConfig:
    """Everything the pipeline needs, grouped per stage."""

    ocr: OcrConfig = field(default_factory=OcrConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    redact: RedactConfig = field(default_factory=RedactConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
