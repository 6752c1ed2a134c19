"""Markup debris: what Markdown, HTML and Word exports leave in the text.

The corpus shows the real cases: ``**第一章** **总则**``, ``财会\\[2006\\]3号``, ``1\\. 对于``,
``<!-- INFO END -->``, link and image syntax, and from Word/HTML exports ``<br>``, ``<span ...>``,
``&nbsp;``, ``<a name=...>`` and pandoc attributes like ``{.underline}``. The text inside is kept.

Angle brackets are only stripped around real HTML tag names: Chinese law texts use ``<...>`` as
inner book-title marks (``《关于修改<中华人民共和国建筑法>的决定》``), which must survive.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

# Zero-width characters, soft hyphens, and private-use code points (bullets from symbol fonts
# such as Wingdings, which PDF text layers expose as U+F06C and friends).
_ZERO_WIDTH = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad\ue000-\uf8ff]")
_BREAK_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HTML_NAMES = (
    "a|abbr|b|big|blockquote|body|br|caption|center|cite|code|col|colgroup|dd|del|dfn|div|dl|dt|em|"
    "figcaption|figure|font|h[1-6]|head|hr|html|i|img|ins|kbd|li|link|mark|meta|nobr|ol|p|pre|q|s|"
    "samp|small|span|strike|strong|sub|sup|table|tbody|td|tfoot|th|thead|title|tr|tt|u|ul|var|wbr|xml"
)
# A known HTML element, or a namespaced Word/Office element such as <o:p> or <st1:chsdate ...>.
_TAG = re.compile(
    rf"</?(?:(?:{_HTML_NAMES})|[a-z][a-z0-9]*:[a-z][\w.-]*)(?:\s+[^<>]*)?/?>",
    re.IGNORECASE,
)
_STYLE_OR_SCRIPT = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_ENTITY = re.compile(r"&(?:[a-zA-Z][a-zA-Z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6});")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^<>\s]+|mailto:[^<>\s]+)>", re.IGNORECASE)

# Markdown
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"(?<!\\)\[([^\]]*)(?<!\\)\]\((?:[^()\s]+|\([^)]*\))*(?:\s+\"[^\"]*\")?\)")
_PANDOC_SPAN = re.compile(r"(?<!\\)\[([^\]]*)(?<!\\)\]\{[^{}]*\}")
_PANDOC_ATTR = re.compile(r"\{[#.][^{}]*\}")
# One left-to-right pass so an escaped star (\*) stays a star while ** emphasis marks vanish.
_ESCAPE_OR_EMPHASIS = re.compile(r"\\([!-/:-@\[-`{-~])|\*{2,3}|~~")
_BLOCKQUOTE = re.compile(r"^\s{0,3}(?:>\s?)+")
_RULE = re.compile(r"^\s*([=\-*_])(?:\s*\1){2,}\s*$")
_ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")


@dataclass
class Stripped:
    """The result of cleaning one source line.

    ``lines`` holds the pieces left (a ``<br>`` splits a line; an empty list means the line was
    pure debris) and ``heading_level`` a Markdown ``#`` level found in the text itself.
    """

    lines: list[str]
    heading_level: int | None = None


class DebrisStripper:
    """Strips markup debris line by line, remembering an HTML comment left open on a line.

    Args:
        markdown: also undo Markdown syntax (emphasis, escapes, links, ``#`` headings, rules).
            Off for PDF and DOCX text, where ``**`` or a backslash is content.
    """

    def __init__(self, markdown: bool) -> None:
        self.markdown = markdown
        self._in_comment = False

    def strip(self, text: str) -> Stripped:
        """Clean one line; see :class:`Stripped` for what comes back."""
        text = _ZERO_WIDTH.sub("", text)
        text = self._drop_comments(text)
        level = None
        if self.markdown:
            if _RULE.match(text):
                return Stripped([])
            heading = _ATX_HEADING.match(text)
            if heading:
                level, text = len(heading.group(1)), heading.group(2)
            text = _BLOCKQUOTE.sub("", text)
        pieces = [strip_inline(piece, markdown=self.markdown) for piece in _BREAK_TAG.split(text)]
        return Stripped([p for p in pieces if p.strip()], level)

    def _drop_comments(self, text: str) -> str:
        if self._in_comment:
            end = text.find("-->")
            if end < 0:
                return ""
            text, self._in_comment = text[end + 3 :], False
        text = _COMMENT.sub("", text)
        start = text.find("<!--")
        if start >= 0:
            text, self._in_comment = text[:start], True
        return text


def strip_inline(text: str, *, markdown: bool) -> str:
    """Remove inline debris from a piece of text (a line or a table cell), keeping its words.

    Whitespace is left for the caller to tidy, so spacing decisions stay in one place.
    """
    text = _ZERO_WIDTH.sub("", text)
    text = _STYLE_OR_SCRIPT.sub("", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _BREAK_TAG.sub(" ", text)
    text = _TAG.sub("", text)
    if markdown:
        text = _IMAGE.sub(r"\1", text)
        text = _LINK.sub(r"\1", text)
        text = _PANDOC_SPAN.sub(r"\1", text)
        text = _PANDOC_ATTR.sub("", text)
        text = _ESCAPE_OR_EMPHASIS.sub(lambda m: m.group(1) or "", text)
    return _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
