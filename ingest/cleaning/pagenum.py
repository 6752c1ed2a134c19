"""Page numbers in the forms Chinese and Western documents print them.

A page number is only recognised when it is the whole line: "第 3 页" alone is a footer, "见第 3 页"
inside a sentence is content.
"""

from __future__ import annotations

import re

_NUM = r"[0-9０-９]+"
_CN_NUM = r"[0-9０-９一二三四五六七八九十百零〇两]+"
_DASH = r"[-－—–‒―~～]"
# Front matter is numbered i..xcix; larger numerals (mix, cd, md) are more likely words.
_ROMAN = r"(?=[ivxl]+$)(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})"

_PATTERNS = [
    # 第 3 页 / 第3页 共20页 / 第 3 页，共 20 页 / 第三页
    rf"第\s*{_CN_NUM}\s*页(?:\s*[,，/、]?\s*共\s*{_CN_NUM}\s*页)?",
    # 共20页 第3页
    rf"共\s*{_CN_NUM}\s*页\s*[,，]?\s*第\s*{_CN_NUM}\s*页",
    # - 3 - / — 3 — / ~3~
    rf"{_DASH}+\s*{_NUM}\s*{_DASH}+",
    # 3/20, 3 / 20
    rf"{_NUM}\s*[/／]\s*{_NUM}",
    # Page 3, Page 3 of 20, p. 3, pp 3
    rf"(?:page|p\.?|pp\.?)\s*{_NUM}(?:\s*(?:of|/)\s*{_NUM})?",
    # 3
    r"[0-9０-９]{1,4}",
    # iii, XIV
    _ROMAN,
]
_PAGE_NUMBER = re.compile(r"^\s*(?:" + "|".join(_PATTERNS) + r")\s*$", re.IGNORECASE)


def is_page_number(text: str) -> bool:
    """True when the whole line is a page number (``第 3 页``, ``- 3 -``, ``3/20``, ``Page 3 of 20``,
    ``3``, ``xiv`` ...). Callers decide where on the page a line must sit to be treated as one."""
    stripped = text.strip()
    return bool(stripped) and bool(_PAGE_NUMBER.match(stripped))
