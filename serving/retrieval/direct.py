"""Questions that name a document and/or an article reach those clauses directly.

Staff write references in many shapes: ``《建筑法》第二十二条``, ``建筑法第22条``,
``企业会计准则第14号第五条``, ``第十四号准则第五条``, ``收入准则第五条``, ``CAS 14 第五条``. An alias
table built from the titles of the documents in the graph maps each way of naming a document to
its id; article numbers are compared as integers, so Chinese and Arabic numerals both work.
Lexical retrievers cannot do this reliably: "第五条" appears in dozens of clauses.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ingest.ids import normalize_title
from ingest.numerals import CN_DIGITS, to_int
from kg.normalize import article_number

_PRC = "中华人民共和国"
_DROP = set("《》〈〉<>“”\"'‘’「」『』【】[]()（）—–―‐‑‒─━-－~～_*#·")
_NUM = rf"[0-9{CN_DIGITS}]+"
_HAO = re.compile(rf"第({_NUM})号")
_ARTICLE = re.compile(rf"第({_NUM})条")
_CAS_TITLE = re.compile(r"企业会计准则第(\d+)号[—\-－–―_~～\s]*([^（(《》\s—\-]+)?")
_COURT = re.compile(r"^最高人民法院关于审理(.+?)(?:纠纷)?案件适用法律问题的解释(.*)$")


def normalize_question(text: str) -> str:
    """The form both questions and aliases are matched in.

    NFKC, lower case, no whitespace, quotes, brackets or dashes, no ``中华人民共和国`` prefix, and
    ``第十四号`` written ``第14号`` — the differences between ways of writing the same name.
    """
    norm = unicodedata.normalize("NFKC", text).lower()
    norm = "".join(ch for ch in norm if not ch.isspace() and ch not in _DROP)
    norm = norm.replace(_PRC, "")

    def arabic(m: re.Match[str]) -> str:
        try:
            return f"第{to_int(m.group(1))}号"
        except ValueError:
            return m.group(0)

    norm = _HAO.sub(arabic, norm)
    # "十四号准则" without 第
    return re.sub(
        rf"(?<!第)([{CN_DIGITS}]+)号准则",
        lambda m: f"{to_int(m.group(1))}号准则" if _is_numeral(m.group(1)) else m.group(0),
        norm,
    )


def _is_numeral(text: str) -> bool:
    try:
        to_int(text)
    except ValueError:
        return False
    return True


def title_aliases(title: str, doc_id: str) -> set[str]:
    """Ways of naming the document titled ``title``, normalized by :func:`normalize_question`.

    Accounting standards get their number forms (企业会计准则第14号, 第14号准则, 14号准则, cas14)
    and their subject form (收入准则); an application guide gets the same forms followed by
    应用指南. Laws get their title without 中华人民共和国; court interpretations their subject
    (建设工程施工合同司法解释).
    """
    aliases = {
        normalize_question(title),
        normalize_question(normalize_title(title)),
        normalize_question(doc_id),
    }
    soft = unicodedata.normalize("NFKC", title)
    cas = _CAS_TITLE.search(soft.replace(" ", ""))
    if cas:
        number, subject = cas.group(1), (cas.group(2) or "").strip()
        suffix = "应用指南" if "应用指南" in soft else ("解释" if "解释" in soft[cas.end() :] else "")
        bases = {f"企业会计准则第{number}号", f"第{number}号准则", f"{number}号准则", f"cas{number}"}
        if subject:
            bases |= {f"{subject}准则", f"企业会计准则{subject}", f"企业会计准则第{number}号{subject}"}
        aliases |= {normalize_question(b + suffix) for b in bases}
    court = _COURT.match(normalize_question(title))
    if court:
        subject, tail = court.group(1), court.group(2)
        for base in (f"{subject}司法解释", f"{subject}纠纷司法解释", f"{subject}解释"):
            aliases |= {base, base + tail}
    norm = normalize_question(title)
    if norm.endswith("暂行条例"):  # 增值税暂行条例 is commonly called 增值税条例
        aliases.add(norm.removesuffix("暂行条例") + "条例")
    return {a for a in aliases if len(a) >= 3}


def _whole_number(text: str, start: int, end: int) -> bool:
    """False when the match cuts a number (``cas1`` inside ``cas14``, ``4号准则`` in ``14号准则``)."""
    if start > 0 and text[start].isdigit() and text[start - 1].isdigit():
        return False
    return not (end < len(text) and text[end - 1].isdigit() and text[end].isdigit())


class AliasTable:
    """Normalized names -> document ids, matched longest first inside a question.

    Args:
        documents: ``(doc_id, title)`` of every document in the graph.
    """

    def __init__(self, documents: Iterable[tuple[str, str]]) -> None:
        table: dict[str, set[str]] = {}
        for doc_id, title in documents:
            for alias in title_aliases(title or doc_id, doc_id):
                table.setdefault(alias, set()).add(doc_id)
        self._table = table
        self._by_length = sorted(table, key=lambda a: (-len(a), a))

    def __len__(self) -> int:
        return len(self._table)

    def aliases(self) -> dict[str, list[str]]:
        return {a: sorted(d) for a, d in self._table.items()}

    def find(self, normalized: str) -> list[tuple[int, int, list[str]]]:
        """Non-overlapping ``(start, end, doc_ids)`` mentions in a normalized question, by position."""
        taken: list[tuple[int, int]] = []
        found: list[tuple[int, int, list[str]]] = []
        for alias in self._by_length:
            start = normalized.find(alias)
            while start >= 0:
                end = start + len(alias)
                if _whole_number(normalized, start, end) and not any(start < e and s < end for s, e in taken):
                    taken.append((start, end))
                    found.append((start, end, sorted(self._table[alias])))
                start = normalized.find(alias, start + 1)
        return sorted(found)


@dataclass
class DirectMatch:
    """What a question names: documents (in order of mention) and the clauses it points at."""

    doc_ids: list[str] = field(default_factory=list)
    clause_ids: list[str] = field(default_factory=list)


class DirectResolver:
    """Finds named documents and articles in a question.

    Args:
        aliases: the alias table of the graph's documents.
        articles: doc id -> article number (int) -> clause id, from the active clauses.
    """

    def __init__(self, aliases: AliasTable, articles: Mapping[str, Mapping[int, str]]) -> None:
        self._aliases = aliases
        self._articles = articles

    @staticmethod
    def article_map(clauses: Iterable[tuple[str, str, str]]) -> dict[str, dict[int, str]]:
        """``{doc_id: {5: "CAS-14-收入/第五条"}}`` from ``(clause_id, doc_id, number)`` triples."""
        out: dict[str, dict[int, str]] = {}
        for clause_id, doc_id, number in clauses:
            parsed = article_number(number or "")
            if parsed and parsed[1] == "条":
                out.setdefault(doc_id, {}).setdefault(parsed[0], clause_id)
        return out

    def resolve(self, question: str) -> DirectMatch:
        norm = normalize_question(question)
        mentions = self._aliases.find(norm)
        match = DirectMatch()
        for _, _, docs in mentions:
            for d in docs:
                if d not in match.doc_ids:
                    match.doc_ids.append(d)
        if not mentions:
            return match
        for m in _ARTICLE.finditer(norm):
            try:
                number = to_int(m.group(1))
            except ValueError:
                continue
            docs = self._docs_for(m.start(), mentions)
            for doc in docs:
                cid = self._articles.get(doc, {}).get(number)
                if cid and cid not in match.clause_ids:
                    match.clause_ids.append(cid)
        return match

    @staticmethod
    def _docs_for(position: int, mentions: Sequence[tuple[int, int, list[str]]]) -> list[str]:
        """The documents an article at ``position`` belongs to: the nearest mention before it,
        else the first one after it (收入准则里第五条 / 第五条在收入准则中)."""
        before = [m for m in mentions if m[1] <= position]
        if before:
            return before[-1][2]
        after = [m for m in mentions if m[0] >= position]
        return after[0][2] if after else []
