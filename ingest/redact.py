"""Personal-data redaction: ID, passport and account numbers, phones, e-mail addresses, names and
street addresses become typed placeholders such as ``[手机号]`` before anything leaves the ingest
package — in the text, in every table cell, in the title and in the stored file path.

Two kinds of evidence are used (see :mod:`ingest.redaction`): a *label* (身份证号：, 账号：,
联系人：, 住址：) makes the value after it personal whatever its checksum, and a number *without* a
label must prove itself by its checksum or exact shape, because regulations are full of long
numbers that are not personal data. Full-width digits, numbers split by spaces or dashes and
OCR-confused digits (O for 0) are read as the numbers they are. In tables, a header cell labels
its column and a label cell labels its right neighbour. Originals are never logged; only counts.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePath

import structlog

from ingest.cleaning.tables import render
from ingest.config import RedactConfig
from ingest.redaction.kinds import (
    ADDRESS,
    BANK_ACCOUNT,
    BANK_CARD,
    EMAIL,
    ID_CARD,
    ID_DOCUMENT,
    LANDLINE,
    MOBILE,
    NAME,
    PASSPORT,
    PERMIT,
)
from ingest.redaction.labels import cell_label, find_labelled, labelled_cell
from ingest.redaction.numbers import LONG_NUMBER, UNLABELLED, Detector, valid_bank_card, valid_resident_id
from ingest.redaction.text import ascii_view
from ingest.types import Block, CleanDocument, RawTable
from kgqa.errors import ConfigError

__all__ = [
    "ADDRESS",
    "BANK_ACCOUNT",
    "BANK_CARD",
    "EMAIL",
    "ID_CARD",
    "ID_DOCUMENT",
    "LANDLINE",
    "MOBILE",
    "NAME",
    "PASSPORT",
    "PERMIT",
    "Finding",
    "Redactor",
    "valid_bank_card",
    "valid_resident_id",
]

log = structlog.get_logger(__name__)

# In file names and titles made from them, _ and - separate words: 报销单_联系人_王建国.pdf
_NAME_SEPARATORS = str.maketrans({"_": " ", "-": " ", "+": " "})


@dataclass(frozen=True)
class Finding:
    """One redacted span: where it is in the text and its placeholder label (for audits, benches)."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    label: str
    rank: int


class Redactor:
    """Replaces personal data with typed placeholders and counts what it replaced.

    Args:
        config: ``extra_patterns`` maps a placeholder label to a regular expression; matches
            become ``[label]``. They compete with the built-in types: where two matches overlap,
            the one that starts first wins, then the longer one, then labelled values before
            unlabelled numbers before extra patterns.

    Raises:
        ConfigError: an extra pattern is not a valid regular expression or matches the empty string.
    """

    def __init__(self, config: RedactConfig | None = None) -> None:
        config = config or RedactConfig()
        self._extra: list[Detector] = []
        for label, expression in config.extra_patterns.items():
            try:
                pattern = re.compile(expression)
            except re.error as exc:
                raise ConfigError(f"redaction pattern for '{label}' is not a valid regex: {exc}") from exc
            if pattern.search(""):
                raise ConfigError(
                    f"redaction pattern for '{label}' matches empty text; make it match something"
                )
            self._extra.append(Detector(label, pattern))

    # -- text ----------------------------------------------------------------------------------
    def find(self, text: str) -> list[Finding]:
        """The spans of ``text`` that :meth:`redact` replaces, in text order, without overlaps."""
        return [Finding(h.start, h.end, h.label) for h in self._resolve(self._hits(text))]

    def redact(self, text: str) -> tuple[str, Counter[str]]:
        """Replace every personal datum in ``text``; returns the new text and counts per label."""
        return self._apply(text, self._hits(text))

    def redact_path(self, path: PurePath | str) -> Path:
        """A path with personal data removed from every component (a file name such as
        ``报销单_联系人王建国_13800138000.pdf``), for wherever a path is stored or logged."""
        return self._redact_path_counted(PurePath(path))[0]

    # -- documents -----------------------------------------------------------------------------
    def redact_document(self, doc: CleanDocument) -> CleanDocument:
        """A copy of ``doc`` with the title, the source path, every block's text, table cells and
        captions redacted.

        ``redactions`` holds the counts per label, added to any counts already there.
        """
        counts: Counter[str] = Counter(doc.redactions)
        title, found = self._redact_name(doc.title)
        counts.update(found)
        source_path, found = self._redact_path_counted(doc.source_path)
        counts.update(found)
        blocks = [self._redact_block(block, counts) for block in doc.blocks]
        new = sum(counts.values()) - sum(doc.redactions.values())
        if new:
            log.info("redact.document", redactions=new, by_type=dict(counts))
        return dataclasses.replace(
            doc, title=title, source_path=source_path, blocks=blocks, redactions=dict(counts)
        )

    def redact_table(self, table: RawTable, counts: Counter[str]) -> RawTable:
        """A copy of ``table`` with every cell and the caption redacted.

        A header cell that is a label (身份证号, 联系人) makes every cell below it a value of that
        kind; a label cell does the same for the cell to its right. Counts go into ``counts``.
        """
        rows = [list(row) for row in table.rows]
        kinds = [[cell_label(ascii_view(cell)) for cell in row] for row in rows]
        header = kinds[0] if kinds else []
        labelled: dict[tuple[int, int], str] = {}
        for r, row in enumerate(kinds):
            for c, kind in enumerate(row):
                if kind is not None and c + 1 < len(row) and row[c + 1] is None:
                    labelled[(r, c + 1)] = kind
                if r > 0 and kind is None and c < len(header) and header[c] is not None:
                    labelled.setdefault((r, c), header[c])
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                hits = self._hits(cell)
                kind = labelled.get((r, c))
                if kind is not None:
                    span = labelled_cell(ascii_view(cell), kind)
                    if span is not None:
                        hits.append(_Hit(span.start, span.end, span.label, -1))
                row[c], found = self._apply(cell, hits)
                counts.update(found)
        caption = None
        if table.caption:
            caption, found = self.redact(table.caption)
            counts.update(found)
        return dataclasses.replace(table, rows=rows, caption=caption)

    # -- internals -----------------------------------------------------------------------------
    def _hits(self, text: str, view: str | None = None) -> list[_Hit]:
        if not text:
            return []
        view = ascii_view(text) if view is None else view
        hits = [_Hit(s.start, s.end, s.label, 0) for s in find_labelled(view)]
        numbers, at = LONG_NUMBER.search(view) is not None, "@" in view
        for rank, detector in enumerate(UNLABELLED, start=1):
            if at if detector.label == EMAIL else numbers:
                hits.extend(self._detect(detector, view, rank))
        for rank, detector in enumerate(self._extra, start=len(UNLABELLED) + 1):
            hits.extend(self._detect(detector, text, rank))  # extra patterns see the text as written
        return hits

    @staticmethod
    def _detect(detector: Detector, text: str, rank: int) -> list[_Hit]:
        return [
            _Hit(m.start(), m.end(), detector.label, rank)
            for m in detector.pattern.finditer(text)
            if m.end() > m.start() and detector.accept(m.group(0))
        ]

    @staticmethod
    def _resolve(hits: list[_Hit]) -> list[_Hit]:
        kept: list[_Hit] = []
        cursor = 0
        for hit in sorted(hits, key=lambda h: (h.start, -(h.end - h.start), h.rank)):
            if hit.start >= cursor:
                kept.append(hit)
                cursor = hit.end
        return kept

    def _apply(self, text: str, hits: list[_Hit]) -> tuple[str, Counter[str]]:
        counts: Counter[str] = Counter()
        pieces: list[str] = []
        cursor = 0
        for hit in self._resolve(hits):
            pieces.append(text[cursor : hit.start])
            pieces.append(f"[{hit.label}]")
            counts[hit.label] += 1
            cursor = hit.end
        if not counts:
            return text, counts
        pieces.append(text[cursor:])
        return "".join(pieces), counts

    def _redact_name(self, name: str) -> tuple[str, Counter[str]]:
        """Redact a file name or a title, read both as written and with ``_``, ``-`` and ``+`` as
        spaces between words (报销单_联系人_王建国.pdf)."""
        spaced = ascii_view(name).translate(_NAME_SEPARATORS)
        return self._apply(name, self._hits(name) + self._hits(name, spaced))

    def _redact_path_counted(self, path: PurePath) -> tuple[Path, Counter[str]]:
        counts: Counter[str] = Counter()
        parts = []
        for part in PurePath(path).parts:
            redacted, found = self._redact_name(part)
            parts.append(redacted)
            counts.update(found)
        return (Path(*parts) if parts else Path(path)), counts

    def _redact_block(self, block: Block, counts: Counter[str]) -> Block:
        if block.table is not None:
            table = self.redact_table(block.table, counts)
            # The text of a table block renders its cells: render the redacted ones.
            return dataclasses.replace(block, text=render(table), table=table)
        text, found = self.redact(block.text)
        counts.update(found)
        return dataclasses.replace(block, text=text)
