"""Character classes shared by the cleaning modules."""

from __future__ import annotations

import re
import unicodedata

from zhtext import CJK

_SPACE_RUN = re.compile(r"[\s\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# Full-width punctuation never needs a space next to it; PDF justification and Word exports
# leave runs of spaces there ("合同，      企业应当").
_FULLWIDTH_PUNCT = "，。、；：？！“”‘’（）《》〈〉【】「」『』〔〕…—～·"
_SPACE_NEAR_PUNCT = re.compile(rf" (?=[{_FULLWIDTH_PUNCT}])|(?<=[{_FULLWIDTH_PUNCT}]) ")


def is_wide(ch: str) -> bool:
    """True for CJK ideographs, kana, hangul and full-width forms (East Asian wide)."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def is_latinish(ch: str) -> bool:
    """True for characters of space-separated scripts: ASCII letters/digits/punctuation, Latin,
    Greek, Cyrillic. Two such characters on either side of a line break need a space."""
    if ch.isspace():
        return False
    if ch.isascii():
        return True
    return ord(ch) < 0x2000 and unicodedata.category(ch)[0] in ("L", "N")


def meaningful_chars(text: str) -> int:
    """Count letters, CJK characters and digits; punctuation and symbols do not make a page."""
    return sum(1 for ch in text if unicodedata.category(ch)[0] in ("L", "N"))


def display_width(text: str) -> int:
    """Width in half-width cells: a CJK character counts two, as it does on the printed line."""
    return sum(2 if is_wide(ch) else 1 for ch in text)


def tidy_spaces(text: str) -> str:
    """Collapse whitespace runs (including NBSP and ideographic spaces) to one space, drop spaces
    beside full-width punctuation, and strip the ends."""
    text = _SPACE_RUN.sub(" ", text).strip()
    return _SPACE_NEAR_PUNCT.sub("", text)


_CJK_GAP = re.compile(rf"(?<=[{CJK}])[ \u00a0](?=[{CJK}])")
_LEADING_MARKER = re.compile(
    r"^第[0-9一二三四五六七八九十百千零〇两]+(?:条(?:之[一二三四五六七八九十]+)?|编|章|节|部分)[ \u00a0\u3000]"
)


def close_cjk_gaps(text: str) -> str:
    """Remove single spaces between two CJK ideographs ("合同变 更日", "企 业 会 计").

    Chinese does not separate words; such spaces come from PDF character spacing or Word
    justification and break phrase matching later. Runs of several spaces are left to
    :func:`tidy_spaces` (they separate columns: "年度        预计成本"). The space after a leading clause or heading
    number ("第五条 企业应当", "第一节 一般规定") is kept: it separates the marker from the text,
    and the joiner takes it as the sign of a real marker rather than a reference.
    """
    match = _LEADING_MARKER.match(text)
    head, body = (text[: match.end()], text[match.end() :]) if match else ("", text)
    return head + _CJK_GAP.sub("", body)
