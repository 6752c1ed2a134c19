"""The regular expressions that several packages need to agree on, defined once.

Each of these used to be copied into the module that needed it, and the copies drifted: the
extractor's definition pattern did not know ``本手册所称``, so the graph stored the term
``本手册所称计量周期`` while the dataset asked about ``计量周期``. Anything that recognizes the
same construction imports it from here.
"""

from __future__ import annotations

import re

from zhtext.numerals import CN_DIGITS, NUMERAL_CLASS

CJK = "\u3400-\u9fff\uf900-\ufaff"
"""Body of a regex character class: CJK ideographs (extension A, the unified block, compatibility)."""

CONTENT_CHAR = re.compile(rf"[{CJK}0-9A-Za-z０-９Ａ-Ｚａ-ｚ]")
"""One character a claim can be made of: an ideograph, a letter or a digit (half or full width).

Text without one (``综上：``, ``——``, ``（）``) says nothing checkable and is not a sentence."""

DEFINITION = re.compile(
    r"^(?:[^，,。；：“”\"]{0,20}?所称(?:的)?)?"
    r"[“\"]?(?P<term>[^，,。；：“”\"]{1,30}?)[”\"]?[，,]?(?:是指|系指|指的是)(?P<body>.*)$",
    re.DOTALL,
)
"""``X，是指Y`` and ``<reference>所称X，是指Y``: ``term`` is X, ``body`` is Y (possibly empty).

The reference before 所称 is whatever the drafting says (本准则, 本手册, 本指引, 本办法第二条, 前款):
the term is what follows it, never the reference. Match it against one sentence."""

CLAUSE_NUMBER = re.compile(rf"^\s*第{NUMERAL_CLASS}+条\s*")
"""The article number a clause text opens with (``第五条 ``, ``第22条``), with the space after it."""

ITEM_MARKER = re.compile(r"^\s*(?:[（(][一二三四五六七八九十\d]+[）)]|\d+[.、．]|[①-⑳])\s*")
"""The marker a list item opens with: ``（一）``, ``(2)``, ``3.``, ``4、``, ``①``."""

NUMBERED_PART = re.compile(rf"第\s*([0-9{CN_DIGITS}]+)\s*(条|章|节|款|项|号)")
"""A numbered part of a text (第22条, 第二十二条, 第十四号): group 1 the numeral, group 2 the unit."""

__all__ = ["CJK", "CLAUSE_NUMBER", "CONTENT_CHAR", "DEFINITION", "ITEM_MARKER", "NUMBERED_PART"]
