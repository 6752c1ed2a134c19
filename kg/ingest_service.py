"""Ingest files into the graph: the one service behind `kgqa ingest` and `make up`.

Each file is processed and written on its own: a bad file is reported with its reason and the
run goes on; because each document is written in one transaction, a failure never leaves half a
document behind or damages what was stored before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from ingest.discovery import discover
from ingest.pipeline import DocumentProcessor
from kg.references import remember_document
from kg.triples import RuleTripleExtractor
from kg.types import Extraction
from kg.writer import EditConflict, EditPolicy, GraphWriter, WriteResult
from kgqa.errors import GraphUnavailable, IngestError

log = structlog.get_logger(__name__)


@dataclass
class FileReport:
    """The per-file line of an ingestion report (what `kgqa ingest --json` prints)."""

    path: str
    doc_id: str
    title: str
    pages: int
    sections: int
    clauses: int
    tables: int
    triples: int
    ocr_pages: int
    redactions: dict[str, int]
    warnings: list[str]
    status: str
    clauses_added: int
    clauses_updated: int
    clauses_retired: int
    parse_seconds: float = 0.0
    peak_memory_mb: float | None = None
    conflicts: list[EditConflict] = field(default_factory=list)


@dataclass
class FailedFile:
    path: str
    reason: str


@dataclass
class SkippedFile:
    """A path deliberately not read (a symbolic link inside a folder, a FIFO...): a warning."""

    path: str
    reason: str


@dataclass
class IngestReport:
    """The outcome of one ingestion run."""

    ingested: list[FileReport] = field(default_factory=list)
    failed: list[FailedFile] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    graph_version: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def conflicts(self) -> list[EditConflict]:
        """Clauses edited by hand whose source text changed (see :data:`kg.writer.EditPolicy`)."""
        return [c for f in self.ingested for c in f.conflicts]


class IngestService:
    """Runs the ingestion pipeline and writes each document to the graph.

    Args:
        pipeline: files -> DocumentTrees; :class:`ingest.worker.IsolatedPipeline` for files from
            users (memory cap and deadline per file).
        extractor: DocumentTree -> triples, entities, references.
        writer: the graph writer.
        llm_extractor: optional second extractor (origin ``llm``) whose triples are added.
    """

    def __init__(
        self,
        pipeline: DocumentProcessor,
        extractor: RuleTripleExtractor,
        writer: GraphWriter,
        llm_extractor: object | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._extractor = extractor
        self._writer = writer
        self._llm = llm_extractor

    def ingest(
        self,
        paths: Iterable[Path],
        *,
        actor: str = "kgqa-ingest",
        on_progress: Callable[[Path], None] | None = None,
        on_file_start: Callable[[list[Path]], None] | None = None,
        replace: Iterable[str] = (),
        on_edit_conflict: EditPolicy = "keep",
    ) -> IngestReport:
        """Ingest every file under ``paths``; one bad file never stops the others.

        Args:
            paths: files and folders.
            actor: recorded on every Change.
            on_progress: called after each file.
            on_file_start: called once with the files found.
            replace: document ids that a file of this run may take over from a document
                ingested from another file (``kgqa ingest --replace``); without it such a file is
                refused (see :meth:`kg.writer.GraphWriter.write_document`). An id that no file of
                the run produces is reported as a failure, since the user expected a replacement.
            on_edit_conflict: where a clause edited by hand changed in its source too: ``keep``
                the edit and store the source's text as a pending version, or let the ``source``
                replace it; reported in :attr:`IngestReport.conflicts` either way.
        """
        replace_ids = set(replace)
        found = discover(paths)
        report = IngestReport(
            failed=[FailedFile(str(e.path), e.reason) for e in found.rejected],
            skipped=[SkippedFile(str(s.path), s.reason) for s in found.skipped],
        )
        if on_file_start is not None:
            on_file_start(found.files)
        try:
            self._ingest_files(found.files, report, actor, replace_ids, on_progress, on_edit_conflict)
        finally:
            self._pipeline.close()  # the worker process lives for one run
        produced = {f.doc_id for f in report.ingested}
        for doc_id in sorted(replace_ids - produced):
            report.failed.append(
                FailedFile(
                    f"--replace {doc_id}", "no file of this run has this document id; nothing was replaced"
                )
            )
        report.graph_version = self._writer.graph_version()
        return report

    def _ingest_files(
        self,
        files: list[Path],
        report: IngestReport,
        actor: str,
        replace_ids: set[str],
        on_progress: Callable[[Path], None] | None,
        on_edit_conflict: EditPolicy,
    ) -> None:
        self._writer.ensure_schema()
        known = self._writer.known_documents()
        for path in files:
            try:
                report.ingested.append(self._ingest_one(path, known, actor, replace_ids, on_edit_conflict))
            except GraphUnavailable:
                raise
            except IngestError as exc:
                log.warning("ingest.failed", file=self._pipeline.public_path(path), reason=exc.reason)
                report.failed.append(FailedFile(str(path), exc.reason))
            except Exception as exc:  # noqa: BLE001 - one broken file must not stop the run
                # no traceback: its frames would carry the document's text into the log
                log.error("ingest.crashed", file=self._pipeline.public_path(path), error=type(exc).__name__)
                report.failed.append(FailedFile(str(path), f"unexpected {type(exc).__name__}: {exc}"))
            finally:
                if on_progress is not None:
                    on_progress(path)

    def _ingest_one(
        self,
        path: Path,
        known: dict[str, list[str]],
        actor: str,
        replace_ids: set[str],
        on_edit_conflict: EditPolicy,
    ) -> FileReport:
        tree = self._pipeline.process(path)
        extraction: Extraction = self._extractor.extract(tree, known)
        if self._llm is not None:
            extra = self._llm.extract(tree)
            extraction.triples.extend(extra.triples)
            extraction.entities.extend(extra.entities)
        result: WriteResult = self._writer.write_document(
            tree,
            extraction,
            actor=actor,
            replace=tree.doc_id in replace_ids,
            on_edit_conflict=on_edit_conflict,
        )
        remember_document(known, tree.doc_id, tree.title)
        stats = self._pipeline.last_stats
        return FileReport(
            path=str(path),
            doc_id=tree.doc_id,
            title=tree.title,
            pages=tree.pages,
            sections=len(tree.sections),
            clauses=len(tree.clauses),
            tables=len(tree.tables),
            triples=len(extraction.triples),
            ocr_pages=tree.ocr_pages,
            redactions=dict(tree.redactions),
            warnings=list(tree.warnings),
            status=result.status,
            clauses_added=result.clauses_added,
            clauses_updated=result.clauses_updated,
            clauses_retired=result.clauses_retired,
            parse_seconds=round(stats.seconds, 3) if stats else 0.0,
            peak_memory_mb=round(stats.peak_rss_mb, 1) if stats and stats.peak_rss_mb else None,
            conflicts=result.conflicts,
        )
