"""Structural markers of Chinese regulations and manuals, as seen at the start of a line.

The joiner asks three questions of every line: does the previous line end a sentence, is this a
heading (第X章/第X节/第X编/第X部分), and does it open a new unit (第X条, an item marker such as
（一） 一、 1. （1） ①). A wrapped sentence may also start with "第五条规定的..."; the numbers
returned here let the joiner tell a reference from a new clause by checking the sequence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import cn2an

_CN_DIGITS = "0-9０-９一二三四五六七八九十百千零〇两"
_SENTENCE_END = "。！？；：…!?;:."
_CLOSERS = "”’\"'」』）)】》〉]"

_HEADING = re.compile(rf"^第\s*([{_CN_DIGITS}]+)\s*(编|章|节|部分)\s*(.*)$")
_CLAUSE = re.compile(rf"^第\s*([{_CN_DIGITS}]+)\s*条(?:之[一二三四五六七八九十]+)?")
_SPACED_MARKER = re.compile(
    rf"^第\s*[{_CN_DIGITS}]+\s*(?:条(?:之[一二三四五六七八九十]+)?|编|章|节|部分)[ \u3000]"
)
_CLAUSE_ONLY = re.compile(rf"^第\s*[{_CN_DIGITS}]+\s*条(?:之[一二三四五六七八九十]+)?$")
_ITEM = re.compile(
    r"^(?:"
    r"[（(]\s*[一二三四五六七八九十百零〇两]+\s*[）)]"  # （一） (一)
    r"|[一二三四五六七八九十百]+\s*[、．]"  # 一、
    r"|[0-9０-９]{1,3}\s*[、．](?![0-9０-９])"  # 1、 1．
    r"|[0-9０-９]{1,3}\.(?![0-9０-９])"  # 1.
    r"|[（(]\s*[0-9０-９]{1,3}\s*[）)]"  # （1） (1)
    r"|[0-9０-９]{1,3}[）)]"  # 1）
    r"|[\u2460-\u2473\u3251-\u325f\u32b1-\u32bf\u2776-\u277f]"  # ① ... ⑳ ㉑ ... ❶
    r")"
)
_MD_BULLET = re.compile(r"^[-*+]\s+\S")
_SENTENCE_PUNCT = re.compile(r"[，。；！？,;!?]")
# "第二章规定的..." / "第三节所称..." are references at the start of a sentence, not titles.
_REFERENCE_TAIL = re.compile(r"^(?:的|之|所|中|规定|和|及|或|与|以|至|在|为|是|有|内|下|项)")
_HEADING_MAX_CHARS = 40

HeadingKind = Literal["编", "章", "节", "部分"]


@dataclass(frozen=True)
class HeadingMark:
    """A recognised 第X章-style heading: its unit, its ordinal and the tidied display text."""

    unit: HeadingKind
    ordinal: int | None
    text: str


def to_int(numeral: str) -> int | None:
    """``五`` -> 5, ``一百零五`` -> 105, ``12`` -> 12; None when the numeral is malformed."""
    numeral = numeral.strip().translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if numeral.isdigit():
        return int(numeral)
    try:
        return int(cn2an.cn2an(numeral, "smart"))
    except (ValueError, KeyError, TypeError):
        return None


def ends_sentence(text: str) -> bool:
    """True when the line ends a sentence: final punctuation, possibly followed by closing quotes
    or brackets (``……称为“商品”。`` and ``“……。”`` both end; ``（以下简称“商品”）`` does not)."""
    stripped = text.rstrip()
    if not stripped:
        return True
    core = stripped.rstrip(_CLOSERS)
    if not core:
        return False
    if core != stripped and core[-1] not in _SENTENCE_END:
        return False
    return core[-1] in _SENTENCE_END


def heading_mark(text: str) -> HeadingMark | None:
    """Recognise a 第X编/章/节/部分 heading line.

    A heading is short and has no sentence punctuation; "第二章规定的事项，..." is a sentence that
    happens to start with a chapter reference and is not one.
    """
    match = _HEADING.match(text)
    if not match or len(text) > _HEADING_MAX_CHARS or _SENTENCE_PUNCT.search(text):
        return None
    numeral, unit, title = match.groups()
    tail = text[match.start(3) :]
    if (
        title
        and text[match.start(3) - 1 : match.start(3)] not in (" ", "\u3000")
        and _REFERENCE_TAIL.match(tail)
    ):
        return None
    marker = f"第{numeral.strip()}{unit}"
    title = tidy_heading_title(title)
    return HeadingMark(unit, to_int(numeral), f"{marker} {title}" if title else marker)  # type: ignore[arg-type]


def tidy_heading_title(title: str) -> str:
    """Close the spacing Chinese typesetting puts into titles: ``总 则`` -> ``总则``.

    Only neighbouring all-CJK tokens are joined, so ``发包 与 承包`` becomes ``发包与承包`` while
    Latin words and mixed tokens keep their spaces.
    """
    out: list[str] = []
    for token in title.split():
        if out and _cjk_only(token) and _cjk_only(out[-1]):
            out[-1] += token
        else:
            out.append(token)
    return " ".join(out)


def clause_number(text: str) -> int | None:
    """The ordinal of a line that starts with 第X条, else None (0 when the numeral is malformed)."""
    match = _CLAUSE.match(text)
    if not match:
        return None
    value = to_int(match.group(1))
    return 0 if value is None else value


def spaced_marker(text: str) -> bool:
    """True when a 第X条/章/节 marker is followed by a space, as in a real clause or heading.

    A reference that merely starts a wrapped line ("第五条规定的...") runs straight on.
    """
    return bool(_SPACED_MARKER.match(text))


def is_clause_marker_only(text: str) -> bool:
    """True for a line that is just ``第五条``: its text follows on the next line."""
    return bool(_CLAUSE_ONLY.match(text.strip()))


def starts_item(text: str, *, markdown: bool = False) -> bool:
    """True when the line opens a numbered item: （一） (一) 一、 1. 1、 （1） (1) 1） ①, or a
    Markdown bullet in Markdown sources."""
    return bool(_ITEM.match(text)) or (markdown and bool(_MD_BULLET.match(text)))


def is_item_marker_only(text: str) -> bool:
    """True for a line that holds an item marker and nothing else."""
    match = _ITEM.match(text.strip())
    return bool(match) and match.end() == len(text.strip())


def _cjk_only(token: str) -> bool:
    return all("\u3400" <= ch <= "\u9fff" for ch in token)
