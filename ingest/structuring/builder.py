"""One pass over the cleaned blocks that builds sections, clause units and tables.

Two modes share the walk. In *article mode* (laws, regulations, standards: the text has 第X条)
a clause is a 条 with its following 款/项 paragraphs, 章/节 are sections, text before the first
条 is the 序言 and appendices are synthetic units (附件1). In *heading mode* (guides, reports,
DOCX manuals without 条) every heading is a section and the paragraphs directly under a heading
form one unit numbered by the heading's position (§3.1).

Sections nest by *rank*: a new section closes every open section of equal or lower rank. Ranks
are 0 for appendices, 1-4 for 编/分编/章/节, the Markdown/DOCX level for headings in heading
mode (10 + level in article mode, so they nest inside 章) and 11+ for numbered headings of
guides (第一部分, 一、, （一）, 1.).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ingest.ids import normalize_title, section_id, table_id
from ingest.structuring.patterns import (
    ArticleStart,
    compact_title,
    is_caption,
    match_appendix,
    match_article,
    match_division,
    match_numbered_heading,
    plain,
)
from ingest.structuring.tables import make_table
from ingest.types import Block, CleanDocument, RawTable, SectionNode, TableNode

PREAMBLE = "序言"
BODY = "正文"
APPENDIX_ORDINAL_BASE = 1000
"""Appendix units are numbered after every real article: max(1000, last article) + n."""

_SYNTHETIC_RANK = math.inf  # anything real closes a synthetic 序言/正文 section
_APPENDIX_RANK = 0
_ARTICLE_MODE_HEADING_RANK = 10
_ID_COMPONENT_CHARS = 20


@dataclass
class Unit:
    """A clause being collected: its number as written, ordinal and paragraph blocks."""

    number: str
    ordinal: int
    kind: str  # article | preamble | appendix | loose | heading
    section_id: str
    blocks: list[Block] = field(default_factory=list)
    article: ArticleStart | None = None
    scope: str | None = None  # enclosing appendix, to tell 附件1's 第一条 from the body's


@dataclass
class _Frame:
    rank: float
    node: SectionNode
    path: tuple[str, ...]
    pos: tuple[int, ...]
    appendix: str | None = None
    synthetic: bool = False
    children: int = 0


@dataclass
class Skeleton:
    """What the walk produces; :func:`ingest.structure.build_tree` turns units into ClauseNodes."""

    article_mode: bool
    sections: list[SectionNode]
    units: list[Unit]
    tables: list[TableNode]
    warnings: list[str]


def is_article_document(blocks: list[Block]) -> bool:
    """Whether the document is organised in 条: a 第一条 and another article, or three articles.

    A guide that quotes "第四十二条规定…" at the start of a paragraph once or twice stays a guide.
    """
    found = [a for b in blocks if b.kind != "table" and (a := match_article(b.text))]
    return (len(found) >= 2 and any(a.ordinal == 1 for a in found)) or len(found) >= 3


class _Walker:
    def __init__(self, doc: CleanDocument, doc_id: str) -> None:
        self.doc = doc
        self.doc_id = doc_id
        self.article_mode = is_article_document(doc.blocks)
        self.title_norm = normalize_title(doc.title)
        self.sections: list[SectionNode] = []
        self.units: list[Unit] = []
        self.tables: list[TableNode] = []
        self.warnings: list[str] = []
        self.stack: list[_Frame] = []
        self.unit: Unit | None = None
        self.root_children = 0
        self.section_ids: set[str] = set()
        self.appendices: dict[str, int] = {}
        self.last_ordinal: dict[str | None, int] = {}
        self.loose = 0
        self.heading_units = 0
        self.seen_content = False
        self._structure_follows = False
        self.skipped_title = False

    # -- classification -------------------------------------------------------------------

    def _is_title(self, index: int, block: Block) -> bool:
        """The document's own title, as a heading or a repeated title line before any content."""
        text = plain(block.text)
        if self.seen_content or not text:
            return False
        if self.title_norm and normalize_title(text) == self.title_norm and len(text) <= 80:
            return True
        if block.kind != "heading" or self.skipped_title or match_division(text) or match_article(text):
            return False
        level = block.level or 1
        others = [b for b in self.doc.blocks[index + 1 :] if b.kind == "heading"]
        return all((b.level or 1) > level for b in others)

    def _caption_for_next(self, index: int) -> bool:
        nxt = self.doc.blocks[index + 1] if index + 1 < len(self.doc.blocks) else None
        return nxt is not None and nxt.kind == "table" and nxt.table is not None and not nxt.table.caption

    # -- sections ---------------------------------------------------------------------------

    def _push(self, rank: float, number: str, title: str, *, appendix: str | None = None) -> _Frame:
        while self.stack and self.stack[-1].rank >= rank:
            self.stack.pop()
        parent = self.stack[-1] if self.stack else None
        if parent is None:
            self.root_children += 1
            pos: tuple[int, ...] = (self.root_children,)
        else:
            parent.children += 1
            pos = (*parent.pos, parent.children)
        if self.article_mode:
            component = number or compact_title(title).replace("/", "").replace("#", "")[:_ID_COMPONENT_CHARS]
            path = (*(parent.path if parent else ()), component or str(pos[-1]))
        else:
            path = tuple(str(p) for p in pos)
        return self._add_frame(rank, number, title, path, pos, appendix=appendix, parent=parent)

    def _add_frame(
        self,
        rank: float,
        number: str,
        title: str,
        path: tuple[str, ...],
        pos: tuple[int, ...],
        *,
        appendix: str | None = None,
        parent: _Frame | None = None,
        synthetic: bool = False,
    ) -> _Frame:
        base, suffix = path, 2
        while section_id(self.doc_id, path) in self.section_ids:
            path = (*base[:-1], f"{base[-1]}_{suffix}")
            suffix += 1
        sid = section_id(self.doc_id, path)
        if suffix > 2:
            self.warnings.append(f"section {number or title!r} repeats under the same parent; id {sid}")
        self.section_ids.add(sid)
        node = SectionNode(
            section_id=sid,
            number=number,
            title=title,
            level=len(self.stack) + 1,
            ord=len(self.sections) + 1,
            parent_id=parent.node.section_id if parent else None,
        )
        self.sections.append(node)
        frame = _Frame(rank, node, path, pos, appendix=appendix, synthetic=synthetic)
        self.stack.append(frame)
        return frame

    def _current_section(self, for_article: bool = False) -> _Frame:
        """The innermost open section, opening a synthetic 序言/正文 one when none is open."""
        if self.stack:
            return self.stack[-1]
        preamble = not for_article and not self.seen_content and self._structure_follows
        number = PREAMBLE if preamble else BODY
        title = PREAMBLE if number == PREAMBLE else self.doc.title
        return self._add_frame(_SYNTHETIC_RANK, number, title, (number,), (), synthetic=True)

    def _appendix_scope(self) -> str | None:
        return next((f.appendix for f in reversed(self.stack) if f.appendix), None)

    # -- units ------------------------------------------------------------------------------

    def _close_unit(self) -> None:
        if self.unit is not None and self.unit.blocks:
            self.units.append(self.unit)
        self.unit = None

    def _open_article(self, block: Block, article: ArticleStart) -> None:
        self._close_unit()
        if self.stack and self.stack[-1].synthetic and self.stack[-1].node.number == PREAMBLE:
            self.stack.pop()
        frame = self._current_section(for_article=True)
        scope = self._appendix_scope()
        last = self.last_ordinal.get(scope)
        if last is not None and article.ordinal not in (last, last + 1):
            where = f" in {scope}" if scope else ""
            self.warnings.append(
                f"{article.number}{where} follows article {last}: numbering is not consecutive"
            )
        self.last_ordinal[scope] = article.ordinal
        self.unit = Unit(
            article.number, article.ordinal, "article", frame.node.section_id, [block], article, scope
        )

    def _open_loose(self) -> Unit:
        frame = self._current_section()
        if frame.synthetic:
            number = frame.node.number
            kind, ordinal = ("preamble", 0) if number == PREAMBLE else ("loose", 1)
        elif not self.article_mode:
            self.heading_units += 1
            number, kind, ordinal = "§" + ".".join(map(str, frame.pos)), "heading", self.heading_units
        elif scope := self._appendix_scope():
            number, kind, ordinal = scope, "appendix", self.appendices[scope]
        elif None not in self.last_ordinal:
            number, kind, ordinal = PREAMBLE, "preamble", 0
        else:
            self.loose += 1
            number, kind, ordinal = f"段{self.loose}", "loose", self.last_ordinal[None]
        self.unit = Unit(number, ordinal, kind, frame.node.section_id)
        return self.unit

    def _open_appendix(self, number: str, title: str) -> None:
        self._close_unit()
        if number in self.appendices:
            number = f"{number}_{len(self.appendices) + 1}"
        base = max(APPENDIX_ORDINAL_BASE, self.last_ordinal.get(None, 0))
        self.appendices[number] = base + len(self.appendices) + 1
        self._push(_APPENDIX_RANK, number, title, appendix=number)

    # -- the walk ---------------------------------------------------------------------------

    def run(self) -> Skeleton:
        blocks = self.doc.blocks
        structural = [i for i, b in enumerate(blocks) if b.kind != "table" and self._is_structural(b)]
        last_structure = structural[-1] if structural else -1
        pending_caption: str | None = None
        for index, block in enumerate(blocks):
            self._structure_follows = index < last_structure
            if block.kind == "table":
                frame = self._current_section()
                self.tables.append(
                    make_table(
                        block.table or RawTable(rows=[[block.text]] if block.text else [], page=block.page),
                        table_id(self.doc_id, len(self.tables) + 1),
                        frame.node.section_id,
                        block.page,
                        pending_caption,
                    )
                )
                pending_caption = None
                continue
            pending_caption = None
            text = plain(block.text)
            if not text:
                continue
            if self._is_title(index, block):
                self.skipped_title = True
                continue
            if self._caption_for_next(index) and is_caption(text):
                appendix = match_appendix(text)
                if self.article_mode and appendix is not None:
                    self._open_appendix(appendix.number, appendix.title)
                pending_caption = text
                continue
            self._handle(block, text)
            self.seen_content = True
        self._close_unit()
        return Skeleton(self.article_mode, self.sections, self.units, self.tables, self.warnings)

    def _is_structural(self, block: Block) -> bool:
        text = plain(block.text)
        if block.kind == "heading" or match_division(text) or match_appendix(text):
            return True
        if self.article_mode:
            return match_article(text) is not None
        return match_numbered_heading(text) is not None

    def _handle(self, block: Block, text: str) -> None:
        division = match_division(text)
        if division is not None:
            self._close_unit()
            self._push(division.rank, division.number, division.title)
            return
        article = match_article(text) if self.article_mode else None
        if article is not None:
            self._open_article(block, article)
            return
        appendix = match_appendix(text)
        if appendix is not None and (self.article_mode or block.kind == "heading"):
            if self.article_mode:
                self._open_appendix(appendix.number, appendix.title)
            else:
                self._close_unit()
                self._push(_APPENDIX_RANK, appendix.number, appendix.title)
            return
        if block.kind == "heading":
            self._close_unit()
            number, title, _ = match_numbered_heading(text) or ("", compact_title(text), 0)
            level = block.level or 1
            rank = _ARTICLE_MODE_HEADING_RANK + level if self.article_mode else level
            self._push(rank, number, title)
            return
        numbered = None if self.article_mode else match_numbered_heading(text)
        if numbered is not None:
            self._close_unit()
            self._push(numbered[2], numbered[0], numbered[1])
            return
        unit = self.unit if self.unit is not None else self._open_loose()
        unit.blocks.append(block)


def walk(doc: CleanDocument, doc_id: str) -> Skeleton:
    """Sections, clause units and tables of ``doc`` in document order; see the module docstring."""
    return _Walker(doc, doc_id).run()
