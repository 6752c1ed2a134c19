"""款/项/目 inside one clause: every paragraph becomes a :class:`ClauseItem`.

Legal drafting nests 条 > 款 (a plain paragraph) > 项 ((一)) > 目 (1.), and practice goes further
with (1) and ①. The level comes from the marker's style, not from its position, so a list that
skips a level (a 款 followed directly by 1. items) still gets the level a reader would give it.
"""

from __future__ import annotations

from ingest.structuring.patterns import ArticleStart, match_marker, plain
from ingest.types import ClauseItem
from zhtext import to_chinese


def parse_items(
    paragraphs: list[str], article: ArticleStart | None, unit_word: str = "款"
) -> list[ClauseItem]:
    """The items of a clause, one per paragraph, in order.

    Args:
        paragraphs: the clause's paragraph texts; the first one starts with 第X条 when
            ``article`` is given, and that number is not repeated in the item text.
        article: the article start found in the first paragraph, or None for synthetic units.
        unit_word: what a plain paragraph is called in the marker: 款 in articles (``第二款``,
            the word references use), 段 in guides and appendices where 款 would be wrong.

    Returns:
        Level-1 items (``第一款``...) for plain paragraphs, marker items at levels 2-5.
    """
    items: list[ClauseItem] = []
    count = 0
    for index, paragraph in enumerate(paragraphs):
        text = paragraph.strip()
        if index == 0 and article is not None:
            text = plain(text)[article.end :].strip()
            if not text:
                continue
        marker = match_marker(text)
        if marker is not None and text[marker.end :].strip():
            items.append(
                ClauseItem(marker=marker.marker, text=text[marker.end :].strip(), level=marker.level)
            )
            continue
        count += 1
        items.append(ClauseItem(marker=f"第{to_chinese(count)}{unit_word}", text=text, level=1))
    return items
