"""The ingestion pipeline: one file in, one graph-ready DocumentTree out.

parse -> clean -> redact -> structure (+chunk). Redaction runs before anything leaves this
package, so personal data never reaches the graph, the logs or a dataset.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol

import structlog

from ingest.clean import clean_document
from ingest.config import IngestConfig
from ingest.parsers import parse_file
from ingest.parsers.ocr import OcrEngine, make_ocr_engine
from ingest.redact import Redactor
from ingest.structure import build_tree
from ingest.types import DocumentTree, ParseStats
from kgqa.errors import IngestError

log = structlog.get_logger(__name__)


class DocumentProcessor(Protocol):
    """Turns one file into a DocumentTree: :class:`IngestPipeline` in this process, or
    :class:`ingest.worker.IsolatedPipeline` in a capped worker process (what the service uses)."""

    last_stats: ParseStats | None

    def process(self, path: Path) -> DocumentTree: ...

    def public_path(self, path: Path) -> str: ...

    def close(self) -> None: ...


class IngestPipeline:
    """Turns files into DocumentTrees, in this process (no memory cap, no deadline: use
    :class:`ingest.worker.IsolatedPipeline` for files from users).

    The OCR engine is expensive to create, so it is built on the first image-only page and reused
    for the rest of the run.

    Args:
        config: per-stage configuration.
        ocr: an OCR engine to use instead of the configured one (tests, custom backends).
    """

    def __init__(self, config: IngestConfig | None = None, ocr: OcrEngine | None = None) -> None:
        self.config = config or IngestConfig()
        self._ocr = ocr
        self._redactor = Redactor(self.config.redact)
        self.last_stats: ParseStats | None = None

    def _ocr_engine(self) -> OcrEngine:
        if self._ocr is None:
            self._ocr = make_ocr_engine(self.config.ocr)
        return self._ocr

    def public_path(self, path: Path) -> str:
        """The absolute path with personal data redacted: what the graph stores and logs show."""
        return str(self._redactor.redact_path(os.path.abspath(path)))

    def close(self) -> None:
        """Nothing to release (the OCR engine goes with the object); part of DocumentProcessor."""

    def process(self, path: Path) -> DocumentTree:
        """Run every stage on one file; raises IngestError naming the file on failure.

        The tree's ``source_path`` is absolute (a document's identity must not depend on the
        directory the ingest ran from) and redacted like the text.
        """
        started = time.perf_counter()
        path = Path(os.path.abspath(path))
        if path.is_symlink():
            raise IngestError(path, "is a symbolic link; links are not followed (name the file it points to)")
        parsed = parse_file(path, self.config, ocr=_LazyOcr(self._ocr_engine))
        cleaned = clean_document(parsed, self.config.clean)
        redacted = self._redactor.redact_document(cleaned)
        tree = build_tree(redacted, self.config.chunk)
        self.last_stats = ParseStats(time.perf_counter() - started)
        log.info(
            "ingest.document",
            file=str(tree.source_path),
            doc_id=tree.doc_id,
            pages=tree.pages,
            ocr_pages=tree.ocr_pages,
            clauses=len(tree.clauses),
            tables=len(tree.tables),
            redactions=sum(tree.redactions.values()),
        )
        return tree


class _LazyOcr:
    """Defers building the OCR engine until a page actually needs OCR."""

    def __init__(self, factory) -> None:
        self._factory = factory

    def recognize(self, image):  # noqa: ANN001 - mirrors OcrEngine.recognize
        return self._factory().recognize(image)
