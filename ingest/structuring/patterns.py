"""Recognising the numbering of Chinese regulations in a single block of text.

Everything here looks at one block in isolation and answers "what is this line?": a division
heading (编/分编/章/节), the start of an article (第X条), an appendix heading (附件1), a table
caption, a list marker ((一), 1., (1), ①) or a numbered heading of a guide (一、总体要求). The tree
builder decides from the answers and from the context what to do.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from zhtext import CJK, CN_DIGITS, NUMERAL_CLASS, to_int

MAX_HEADING_CHARS = 40
"""Longer lines are prose, not headings: real titles of 章/节/附件 are short."""

DIVISION_RANKS = {"编": 1, "分编": 2, "章": 3, "节": 4}
"""Nesting order of legal divisions; a smaller rank encloses a larger one."""

_CN = f"[{CN_DIGITS}]"
_NUM = rf"{NUMERAL_CLASS}(?:[\s{CN_DIGITS}0-9０-９]*{NUMERAL_CLASS})?"
_DIVISION = re.compile(rf"^第\s*(?P<num>{_NUM})\s*(?P<kind>分编|编|章|节)(?P<title>.*)$")
_ARTICLE = re.compile(rf"^第\s*(?P<num>{_NUM})\s*条(?P<sub>之{_CN}+)?")
_APPENDIX = re.compile(rf"^(?P<kind>附件|附表|附录)\s*(?P<num>[0-9０-９{CN_DIGITS}]*)(?P<title>.*)$")
_CAPTION = re.compile(rf"^(?:续?表|附表|Table|TABLE)\s*[0-9０-９{CN_DIGITS}]+(?:[-.．]\d+)?(?!\s*[%％])")
_PART = re.compile(rf"^第\s*(?P<num>{_NUM})\s*部分\s*(?P<title>.*)$")
_SENTENCE_END = "。；;：:，,！？!?"
_CJK_GAP = re.compile(rf"(?<=[{CJK}])\s+(?=[{CJK}])")

# List markers, most specific first: (pattern, ClauseItem level (1 is the 款 itself), heading rank).
# 一、 and （一） share the item level 2 but nest as headings: 一、 encloses （一）.
_MARKERS: list[tuple[re.Pattern[str], int, int]] = [
    (re.compile(rf"^[（(]\s*{_CN}+\s*[）)]"), 2, 13),
    (re.compile(r"^[㈠-㈩]"), 2, 13),
    (re.compile(rf"^{_CN}+\s*、"), 2, 12),
    (re.compile(r"^[（(]\s*[0-9０-９]+\s*[）)]"), 4, 15),
    (re.compile(r"^[⑴-⒇]"), 4, 15),
    (re.compile(r"^[0-9０-９]+\s*(?:[、]|[.．](?![0-9０-９]))"), 3, 14),
    (re.compile(r"^[①-⑳]"), 5, 16),
]
_PART_RANK = 11
_DEEP_HEADING_CHARS = 20


def plain(text: str) -> str:
    """The text without surrounding whitespace (full-width included) and Markdown emphasis/heading marks.

    Classification only; clause texts keep what the cleaner gave us.
    """
    text = text.replace("**", "").replace("__", "")
    return text.strip().lstrip("#").strip()


def compact_title(text: str) -> str:
    """A heading title with the typesetting spaces removed: ``总   则`` -> ``总则``."""
    return _CJK_GAP.sub("", text.strip().strip("：:、.．").strip())


def _numeral(raw: str) -> str:
    return unicodedata.normalize("NFKC", re.sub(r"\s+", "", raw))


def _is_short_heading(text: str) -> bool:
    return 0 < len(text) <= MAX_HEADING_CHARS and "。" not in text


@dataclass(frozen=True)
class Division:
    """A 编/分编/章/节 heading: ``number`` as written without spaces (第一章)."""

    number: str
    title: str
    rank: int


@dataclass(frozen=True)
class ArticleStart:
    """The start of a 条: ``number`` normalized (第五条, 第5条, 第四十二条之一), ``ordinal`` its value."""

    number: str
    ordinal: int
    end: int


@dataclass(frozen=True)
class Appendix:
    """An appendix heading (附件1 / 附表 / 附录二): ``number`` is kind plus numeral as written."""

    number: str
    title: str


@dataclass(frozen=True)
class Marker:
    """A list marker at the start of a paragraph; ``end`` is where the item text begins."""

    marker: str
    level: int
    end: int
    rank: int


def match_division(text: str) -> Division | None:
    """A 编/分编/章/节 heading, or None; prose that happens to start with 第二节... is refused."""
    m = _DIVISION.match(plain(text))
    if not m:
        return None
    title = compact_title(m.group("title"))
    if len(title) > MAX_HEADING_CHARS or any(ch in title for ch in "。；;"):
        return None
    try:
        to_int(_numeral(m.group("num")))
    except ValueError:
        return None
    return Division(f"第{_numeral(m.group('num'))}{m.group('kind')}", title, DIVISION_RANKS[m.group("kind")])


def match_article(text: str) -> ArticleStart | None:
    """The 第X条 that starts ``text``, or None. ``end`` indexes into :func:`plain` of the text."""
    body = plain(text)
    m = _ARTICLE.match(body)
    if not m:
        return None
    num = _numeral(m.group("num"))
    try:
        ordinal = to_int(num)
    except ValueError:
        return None
    return ArticleStart(f"第{num}条{m.group('sub') or ''}", ordinal, m.end())


def match_appendix(text: str) -> Appendix | None:
    """An appendix heading line such as ``附件1 工程价款结算表`` or ``附表：…``; None for prose."""
    body = plain(text)
    m = _APPENDIX.match(body)
    if not m or not _is_short_heading(body):
        return None
    title = compact_title(m.group("title"))
    if title and title[-1] in _SENTENCE_END:
        return None
    return Appendix(f"{m.group('kind')}{_numeral(m.group('num'))}", title)


def is_caption(text: str) -> bool:
    """Whether a short line names the table that follows it (表1 …, 续表2, 附表3 …)."""
    body = plain(text)
    return bool(_CAPTION.match(body)) and _is_short_heading(body)


def match_marker(text: str) -> Marker | None:
    """The list marker that starts a paragraph: (一)/一、 level 2, 1./1、 level 3, (1) level 4, ① level 5."""
    body = text.lstrip()
    offset = len(text) - len(body)
    for pattern, level, rank in _MARKERS:
        m = pattern.match(body)
        if m:
            return Marker(re.sub(r"\s+", "", m.group(0)), level, offset + m.end(), rank)
    return None


def match_numbered_heading(text: str) -> tuple[str, str, int] | None:
    """A numbered heading of a document without articles: ``(number, title, rank)`` or None.

    Guides such as the 应用指南 write headings as plain paragraphs (``一、总体要求``,
    ``（一）“主营业务收入”``); they are told from list items by being short and not ending like a
    sentence. Ranks are above 10 so that true Markdown/DOCX heading levels (1-6) enclose them.
    """
    body = plain(text)
    if not _is_short_heading(body) or body[-1] in _SENTENCE_END:
        return None
    part = _PART.match(body)
    if part:
        return f"第{_numeral(part.group('num'))}部分", compact_title(part.group("title")), _PART_RANK
    marker = match_marker(body)
    if marker is None:
        return None
    title = compact_title(body[marker.end :])
    # A comma or a quoted book title means a list item; deep markers (1., (1)) only head short lines.
    if (
        not title
        or any(ch in title for ch in "，,《")
        or (marker.level > 2 and len(title) > _DEEP_HEADING_CHARS)
    ):
        return None
    return marker.marker.rstrip("、.．"), title, marker.rank
