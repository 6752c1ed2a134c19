"""Cross references written in clauses, resolved to clause ids and document ids.

Regulations point at each other constantly (``本准则第五条``, ``前款``, ``《中华人民共和国会计法》``,
``民法典第一百五十三条第一款``). The graph turns each into a ``REFERS_TO`` edge, which lets the
answer service follow a clause to the rule it depends on. Same-document references are looked up
in the tree (so a number that does not exist yields nothing); references to other documents are
resolved to ids by title even when that document is not ingested yet — the writer links them once
it is. A title may name several stored documents (《企业会计准则第25号》 is both 保险合同 and
原保险合同): the reference then points at each of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ingest.ids import doc_id_for_title, normalize_title
from ingest.types import ClauseNode, DocumentTree
from kg.normalize import article_number, chinese_article
from kg.types import ReferenceRecord
from zhtext import CJK

_NUM = r"[0-9零〇一二两三四五六七八九十百千]+"
_SELF_DOC = r"本(?:准则|法|条例|办法|规定|解释|细则|指南|制度|规则|决定)"
_SUB = rf"(?:第{_NUM}款)?(?:第(?:{_NUM}|[（(]{_NUM}[）)])项)?"

_TITLED = re.compile(rf"《(?P<title>[^《》\n]{{2,80}})》(?:第(?P<art>{_NUM})条{_SUB})?")
_ARTICLE = re.compile(rf"(?P<self>{_SELF_DOC})?第(?P<art>{_NUM})条(?:(?:至|到)第(?P<to>{_NUM})条)?{_SUB}")
_SAME_CLAUSE = re.compile(
    rf"本条(?!例){_SUB}|本款|前(?:[两二三四五])?款|(?<![条》、\d零〇一二两三四五六七八九十百千])第{_NUM}款"
)
_PREVIOUS = re.compile(r"前条|上一条")
_OWN_NUMBER = re.compile(rf"^\s*第{_NUM}条\s*")  # a clause's own number is no reference
# An unbracketed law name right before 第X条 (民法典第一百五十三条): another document.
_NAMED_LAW = re.compile(rf"([{CJK}]{{2,14}}?(?:法典|法|条例))$")
_NAME_CUT = re.compile(r".*(?:依据|依照|按照|根据|适用|违反|参照|执行|和|及|或者|、|的|以|与)")
# Between two references of one chain (第一百五十三条第一款及第七百九十一条): the second inherits the document.
_CHAIN_GAP = re.compile(rf"^(?:第{_NUM}款)?(?:[、和及或与]|以及|或者)?$")


@dataclass(frozen=True)
class FoundReference:
    """A reference found in a text, before it is tied to the clause that states it.

    Attributes:
        text: the words as written (``本准则第五条``).
        span: character offsets of ``text``.
        target_kind: ``clause`` or ``document``.
        target_id: the clause id (``CAS-14-收入/第五条``) or the doc id (``CAS-22-金融工具确认和计量``).
        doc_id: the document the target belongs to.
        title: the document title when the reference names one (``《会计法》`` -> ``会计法``).
        title_key: the normalized title when the document was unknown, so that the writer can
            link it later by title (see :class:`kg.types.ReferenceRecord`).
    """

    text: str
    span: tuple[int, int]
    target_kind: Literal["clause", "document"]
    target_id: str
    doc_id: str
    title: str | None = None
    title_key: str | None = None

    def to_record(self, source_clause_id: str) -> ReferenceRecord:
        return ReferenceRecord(source_clause_id, self.target_kind, self.target_id, self.text, self.title_key)


KnownDocuments = Mapping[str, Sequence[str]]
"""Doc ids and normalized titles of stored documents -> the doc ids they name (several may share
a normalized title: 企业会计准则第25号)."""


def remember_document(known: dict[str, list[str]], doc_id: str, title: str | None) -> None:
    """Add a stored document to ``known`` under its id and its normalized title."""
    for key in (doc_id, normalize_title(title) if title else ""):
        if key:
            ids = known.setdefault(key, [])
            if doc_id not in ids:
                ids.append(doc_id)


@dataclass(frozen=True)
class DocumentTarget:
    """The documents a title names: stored ones, or the id it will get plus the key to find it by."""

    doc_ids: tuple[str, ...]
    title_key: str | None = None


class ClauseIndex:
    """Clauses of one tree by article number and by position, for resolving references.

    Numbers in a tree are as written (``第五条`` or ``第5条``); both map to the integer 5.
    """

    def __init__(self, tree: DocumentTree) -> None:
        self.doc_id = tree.doc_id
        self.title_key = normalize_title(tree.title)
        self.clauses = tree.clauses
        self._position = {c.clause_id: i for i, c in enumerate(tree.clauses)}
        self._by_number: dict[int, ClauseNode] = {}
        for clause in tree.clauses:
            parsed = article_number(clause.number)
            if parsed and parsed[1] == "条":
                self._by_number.setdefault(parsed[0], clause)

    def by_number(self, number: int) -> ClauseNode | None:
        return self._by_number.get(number)

    def previous(self, clause: ClauseNode) -> ClauseNode | None:
        pos = self._position.get(clause.clause_id, 0)
        return self.clauses[pos - 1] if pos > 0 else None


def resolve_documents(title: str, known_docs: KnownDocuments | None = None) -> DocumentTarget:
    """The documents named by ``title``.

    A title whose own id is stored names that document alone (《企业会计准则第25号——原保险合同》);
    else every stored document with the same normalized title (《企业会计准则第25号》 names both
    第25号 standards); else nothing stored yet: the id the title will get, with its normalized
    title as ``title_key`` so that the writer can still link it once the document arrives.

    Args:
        title: the title as written inside 《》, or an alias (``会计法``).
        known_docs: see :data:`KnownDocuments`.
    """
    exact = doc_id_for_title(title)
    if known_docs:
        if exact in known_docs.get(exact, ()):
            return DocumentTarget((exact,))
        for key in (title, normalize_title(title)):
            if known_docs.get(key):
                return DocumentTarget(tuple(known_docs[key]))
    return DocumentTarget((exact,), normalize_title(title) or None)


def _named(title: str, index: ClauseIndex, known_docs: KnownDocuments | None) -> DocumentTarget:
    """Like :func:`resolve_documents`, but a title naming the clause's own document is that document."""
    if index.title_key and normalize_title(title) == index.title_key:
        return DocumentTarget((index.doc_id,))
    return resolve_documents(title, known_docs)


def _to_int(numeral: str) -> int | None:
    parsed = article_number(f"第{numeral}条")
    return parsed[0] if parsed else None


def _other_doc_clause(doc_id: str, number: int) -> str:
    return f"{doc_id}/{chinese_article(number)}"


def find_references(
    text: str,
    clause: ClauseNode,
    index: ClauseIndex,
    known_docs: KnownDocuments | None = None,
) -> list[FoundReference]:
    """Every cross reference in ``text`` (a clause's text or one of its items).

    Args:
        text: where to look.
        clause: the clause that states ``text`` (targets of 本条/前款/前条 are relative to it).
        index: the clauses of the clause's document.
        known_docs: see :func:`resolve_documents`.

    Returns:
        References in text order; same-document numbers missing from the tree are dropped.
    """
    found: list[FoundReference] = []
    taken: list[tuple[int, int]] = []

    def free(span: tuple[int, int]) -> bool:
        return not any(span[0] < e and s < span[1] for s, e in taken)

    def add(ref: FoundReference) -> None:
        taken.append(ref.span)
        found.append(ref)

    for m in _TITLED.finditer(text):
        title = m.group("title").strip()
        named = _named(title, index, known_docs)
        number = _to_int(m.group("art")) if m.group("art") else None
        for doc_id in named.doc_ids:
            if number is None:
                add(FoundReference(m.group(0), m.span(), "document", doc_id, doc_id, title, named.title_key))
            elif doc_id == index.doc_id:
                target = index.by_number(number)
                if target is not None:
                    add(FoundReference(m.group(0), m.span(), "clause", target.clause_id, doc_id, title))
            else:
                cid = _other_doc_clause(doc_id, number)
                add(FoundReference(m.group(0), m.span(), "clause", cid, doc_id, title, named.title_key))

    # (end of the last other-document reference, the documents it named)
    chain_doc: tuple[int, DocumentTarget] | None = None
    for m in _ARTICLE.finditer(text):
        if not free(m.span()):
            continue
        first = _to_int(m.group("art"))
        last = _to_int(m.group("to")) if m.group("to") else first
        if first is None or last is None:
            continue
        numbers = range(first, min(max(first, last), first + 30) + 1)
        other: DocumentTarget | None = None
        if not m.group("self"):
            named_law = _NAMED_LAW.search(text[max(0, m.start() - 14) : m.start()])
            if named_law:
                name = _NAME_CUT.sub("", named_law.group(1))
                if len(name) >= 2:
                    other = _named(name, index, known_docs)
            elif chain_doc and _CHAIN_GAP.match(text[chain_doc[0] : m.start()]):
                other = chain_doc[1]
        if other is not None and index.doc_id not in other.doc_ids:
            for doc_id in other.doc_ids:
                for n in numbers:
                    cid = _other_doc_clause(doc_id, n)
                    add(
                        FoundReference(m.group(0), m.span(), "clause", cid, doc_id, title_key=other.title_key)
                    )
            chain_doc = (m.end(), other)
            continue
        for n in numbers:
            target = index.by_number(n)
            if target is not None:
                add(FoundReference(m.group(0), m.span(), "clause", target.clause_id, index.doc_id))

    for m in _SAME_CLAUSE.finditer(text):
        if free(m.span()):
            add(FoundReference(m.group(0), m.span(), "clause", clause.clause_id, index.doc_id))
    previous = index.previous(clause)
    if previous is not None:
        for m in _PREVIOUS.finditer(text):
            if free(m.span()):
                add(FoundReference(m.group(0), m.span(), "clause", previous.clause_id, index.doc_id))
    return sorted(found, key=lambda r: r.span)


def clause_references(
    clause: ClauseNode, index: ClauseIndex, known_docs: KnownDocuments | None = None
) -> list[FoundReference]:
    """References in a clause's text and in those of its items that the text does not repeat."""
    found = find_references(_OWN_NUMBER.sub("", clause.text, count=1), clause, index, known_docs)
    for item in clause.items:
        if item.text and item.text not in clause.text:
            found.extend(find_references(item.text, clause, index, known_docs))
    unique: dict[tuple[str, str, str], FoundReference] = {}
    for ref in found:
        unique.setdefault((ref.target_kind, ref.target_id, ref.text), ref)
    return list(unique.values())
