"""The ingestion pipeline: one file in, one graph-ready DocumentTree out.

parse -> clean -> redact -> structure (+chunk). Redaction runs before anything leaves this
package, so personal data never reaches the graph, the logs or a dataset.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ingest.clean import clean_document
from ingest.config import IngestConfig
from ingest.parsers import SUPPORTED_SUFFIXES, parse_file
from ingest.parsers.ocr import OcrEngine, make_ocr_engine
from ingest.redact import Redactor
from ingest.structure import build_tree
from ingest.types import DocumentTree
from kgqa.errors import UnsupportedFormat

log = structlog.get_logger(__name__)


@dataclass
class Discovery:
    """Files found under the given paths, and the ones refused up front with their reason."""

    files: list[Path] = field(default_factory=list)
    rejected: list[UnsupportedFormat] = field(default_factory=list)


def discover(paths: Iterable[Path]) -> Discovery:
    """Expand folders (recursively, hidden entries skipped) into files, in a stable order.

    Files with an unsupported extension are rejected with a reason rather than silently skipped,
    so a user who drops a spreadsheet into the manuals folder learns it was not ingested.
    """
    found = Discovery()
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = sorted(
                p
                for p in path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.parts[-1:])
            )
        else:
            candidates = [path]
        for p in candidates:
            resolved = p.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            if not p.exists():
                found.rejected.append(UnsupportedFormat(p, "file does not exist"))
            elif p.suffix.lower() not in SUPPORTED_SUFFIXES:
                supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
                found.rejected.append(
                    UnsupportedFormat(
                        p, f"unsupported file type '{p.suffix or '(none)'}' (supported: {supported})"
                    )
                )
            else:
                found.files.append(p)
    return found


class IngestPipeline:
    """Turns files into DocumentTrees.

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

    def _ocr_engine(self) -> OcrEngine:
        if self._ocr is None:
            self._ocr = make_ocr_engine(self.config.ocr)
        return self._ocr

    def process(self, path: Path) -> DocumentTree:
        """Run every stage on one file; raises IngestError naming the file on failure."""
        parsed = parse_file(Path(path), self.config, ocr=_LazyOcr(self._ocr_engine))
        cleaned = clean_document(parsed, self.config.clean)
        redacted = self._redactor.redact_document(cleaned)
        tree = build_tree(redacted, self.config.chunk)
        log.info(
            "ingest.document",
            file=str(path),
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
