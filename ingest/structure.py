"""Cleaned blocks -> DocumentTree: sections (章/节 or headings), clauses (条 or units), tables.

The walk over the blocks lives in :mod:`ingest.structuring.builder`; this module turns its units
into :class:`ClauseNode` values (unique ids, text, pages, items, hash, chunks) and assembles the
tree that ``kg`` writes. Nothing of the text is dropped: headings become section numbers and
titles, a caption line just above a table becomes its caption, the document's own title line is
the Document's title, and every other paragraph ends up in exactly one clause, in order.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from ingest.chunking import chunk_text
from ingest.config import ChunkConfig
from ingest.ids import clause_id, doc_id_for_title
from ingest.structuring.builder import Unit, walk
from ingest.structuring.items import parse_items
from ingest.structuring.patterns import plain
from ingest.types import ClauseNode, CleanDocument, DocumentTree


def text_hash(text: str) -> str:
    """sha256 of the text after NFKC and whitespace collapsing.

    Re-typesetting (full-width spaces, line breaks, half- vs full-width digits) is not a change
    of content and must not bump a clause's version; any other edit is.
    """
    normalized = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)).strip()
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def _unit_text(unit: Unit) -> list[str]:
    return [plain(b.text) if b.kind == "heading" else b.text.strip() for b in unit.blocks]


def _unique_numbers(units: list[Unit], warnings: list[str]) -> list[str]:
    """The id part of each unit: its number, scoped or suffixed where it would repeat.

    Articles inside an appendix are always scoped (``附件1/第一条``) so that 本办法第一条 never
    resolves into an appendix; any remaining repeat (OCR noise, a doubled article) gets ``_2``.
    """
    seen_ids: set[str] = set()
    seen_articles: set[str] = set()
    result: list[str] = []
    for unit in units:
        is_article = unit.kind == "article"
        candidate = f"{unit.scope}/{unit.number}" if is_article and unit.scope else unit.number
        base, suffix = candidate, 2
        while candidate in seen_ids:
            candidate = f"{base}_{suffix}"
            suffix += 1
        if is_article and unit.number in seen_articles:
            warnings.append(f"{unit.number} appears more than once; this occurrence is {candidate}")
        seen_ids.add(candidate)
        if is_article:
            seen_articles.add(unit.number)
        result.append(candidate)
    return result


def build_tree(doc: CleanDocument, chunk: ChunkConfig) -> DocumentTree:
    """Structure a cleaned document into sections, clauses and tables, chunking long clauses.

    Args:
        doc: the cleaned (and redacted) block stream.
        chunk: sizes for cutting clauses longer than ``chunk.max_chars`` into chunks.

    Returns:
        The graph-ready tree. Its ``warnings`` add to the cleaner's: repeated or
        non-consecutive article numbers, repeated section numbers.
    """
    doc_id = doc_id_for_title(doc.title)
    skeleton = walk(doc, doc_id)
    warnings = list(doc.warnings) + skeleton.warnings
    clauses: list[ClauseNode] = []
    for unit, number in zip(skeleton.units, _unique_numbers(skeleton.units, warnings), strict=True):
        paragraphs = _unit_text(unit)
        text = "\n".join(paragraphs)
        cid = clause_id(doc_id, number)
        word = "款" if unit.kind == "article" else "段"
        clauses.append(
            ClauseNode(
                clause_id=cid,
                number=unit.number,
                ordinal=unit.ordinal,
                text=text,
                page_start=min(b.page for b in unit.blocks),
                page_end=max(max(b.page, b.page_end) for b in unit.blocks),
                section_id=unit.section_id,
                sha256=text_hash(text),
                items=parse_items(paragraphs, unit.article, word),
                chunks=chunk_text(cid, text, chunk),
            )
        )
    return DocumentTree(
        doc_id=doc_id,
        title=doc.title,
        kind=doc.kind,
        source_path=doc.source_path,
        sha256=doc.sha256,
        pages=doc.pages,
        ocr_pages=doc.ocr_pages,
        sections=skeleton.sections,
        clauses=clauses,
        tables=skeleton.tables,
        redactions=dict(doc.redactions),
        warnings=warnings,
    )
