"""Chinese numerals as they appear in article numbers (第一百零三条) and list markers ((十二)).

Legal texts number 章/节/条 with Chinese numerals (十, 百, 零 included) and sometimes with Arabic
digits, full-width or not; list markers add circled digits. ``cn2an`` does the arithmetic so the
edge cases (十一 vs 一十一, 两, 〇) are handled by a maintained library rather than by us.
"""

from __future__ import annotations

import unicodedata

import cn2an

CN_DIGITS = "零〇一二两三四五六七八九十百千"
"""Characters that may form a Chinese article number; use inside a regex character class."""

NUMERAL_CLASS = f"[{CN_DIGITS}0-9０-９]"
"""Regex class for one character of an article number written in Chinese or Arabic digits."""

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"


def to_int(numeral: str) -> int:
    """The integer value of a numeral written in Chinese (一百零三), Arabic (103) or full-width (１０３).

    Args:
        numeral: the digits only, without 第/条 and without whitespace.

    Returns:
        The value, e.g. 103.

    Raises:
        ValueError: when the string is not a well-formed numeral (``十十``, empty, letters); callers
            use this to decide that a line starting with 第...条 is not an article after all.
    """
    text = unicodedata.normalize("NFKC", numeral).strip()
    if not text:
        raise ValueError("empty numeral")
    if text.isdigit():
        return int(text)
    if any(ch not in CN_DIGITS for ch in text):
        raise ValueError(f"not a Chinese numeral: {numeral!r}")
    try:
        return int(cn2an.cn2an(text, "normal"))
    except ValueError as exc:
        raise ValueError(f"not a Chinese numeral: {numeral!r}") from exc


def to_chinese(value: int) -> str:
    """The Chinese numeral that legal drafting uses for ``value`` (10 -> 十, 110 -> 一百一十)."""
    if value < 0:
        raise ValueError(f"negative numeral: {value}")
    return str(cn2an.an2cn(value))


def circled_to_int(marker: str) -> int | None:
    """The value of a circled-digit marker (① -> 1), or None when ``marker`` is not one."""
    index = _CIRCLED.find(marker)
    return index + 1 if index >= 0 else None
