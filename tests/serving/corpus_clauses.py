"""Real clauses cut out of the corpus Markdown by hand, as the retriever would return them.

The backends' tests need realistic evidence without a graph; this reads one 条 (its own lines
and list items, up to the next 条 or heading) the way the ingestion writes a clause's text.
"""

from __future__ import annotations

import re
from pathlib import Path

from serving.types import RetrievedClause

_ARTICLE = re.compile(r"^第[一二三四五六七八九十百零〇]+条")
_HEADING = re.compile(r"^(#|\*\*|第[一二三四五六七八九十]+章)")


def read_clause(path: Path, doc_id: str, number: str, section_path: list[str]) -> RetrievedClause:
    lines = [
        ln.replace("**", "").strip(" \u3000\ufeff") for ln in path.read_text(encoding="utf-8").splitlines()
    ]
    title = lines[0].lstrip("# ").strip()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(number))
    body = [lines[start]]
    for ln in lines[start + 1 :]:
        if _ARTICLE.match(ln) or _HEADING.match(ln):
            break
        if ln:
            body.append(ln)
    return RetrievedClause(
        clause_id=f"{doc_id}/{number}",
        version=1,
        doc_id=doc_id,
        doc_title=title,
        doc_version=1,
        number=number,
        text="\n".join(body),
        section_path=section_path,
        page_start=1,
        page_end=1,
        score=1.0,
    )
