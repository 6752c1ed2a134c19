"""Checkable atoms: what an answer sentence claims and what a cited clause states, both normalized.

Numbers go through :mod:`kg.normalize` on both sides, so ``十四日 == 14天 == 14日`` and
``五十万元 == 50万元 == 500000元``; comparators (超过/以上/以内) are kept out of the comparison on
purpose: "超过50万元" and "五十万元以上" name the same threshold, and a wrong number still fails.

Obligations are compared by modality class, found on jieba word tokens so that 应 in 应收账款 or
相应 and 可 in 可能 or 认可 are not taken for modal verbs:

* ``应当``: 应当 / 应 / 应该 / 应予 / 必须 / 须 / 务必
* ``不得``: 不得 / 禁止 / 严禁 / 不准, and 不 + 应(当) / 可(以) / 允许
* ``可以``: 可以 / 可 / 允许 / 有权

Where the cited clause writes what an answer's modal governs (the words up to the next comma,
matched by bigrams), the check is local: that clause modal's class must match, and so must the
party written before it (施工单位应当向建设单位… against 建设单位应当向施工单位… fails although
both parties and 应当 occur in the clause). Elsewhere the class must merely occur in the clause.

Parties come from a lexicon (:data:`DEFAULT_PARTIES` plus the caller's names plus the parties the
evidence's triples name); the longest name wins where names overlap (施工总承包单位 over 总承包单位).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from kg.normalize import Quantity, extract_quantities, normalize_atom
from kg.verification.support import Segment, bigrams, content, segments
from kg.verification.types import EvidenceClause
from zhtext import default_tokenizer

DEFAULT_PARTIES: tuple[str, ...] = (
    "企业", "公司", "集团", "项目部", "项目经理", "项目负责人", "财务部门", "财务部",
    "财务负责人", "会计机构", "会计人员", "单位负责人", "总会计师", "总经理", "副总经理", "分管副总经理",
    "董事会", "股东会", "监事会", "审计部门", "内部审计机构", "审批人", "经办人", "采购部门", "合同管理部门",
    "施工单位", "施工总承包单位", "总承包单位", "承包单位", "发包单位", "建设单位", "监理单位", "勘察单位",
    "设计单位", "分包单位", "劳务分包单位", "发包人", "承包人", "招标人", "投标人", "中标人", "招标代理机构",
    "纳税人", "一般纳税人", "小规模纳税人", "扣缴义务人", "税务机关", "主管税务机关", "用人单位", "农民工",
    "客户", "供应商", "出租人", "承租人", "银行", "金融机构", "人民法院", "当事人", "建设行政主管部门",
    "人力资源社会保障行政部门", "财政部门", "审计机关", "发证机关",
)  # fmt: skip

MODALITY: dict[str, str] = {
    "应当": "应当", "应": "应当", "应该": "应当", "应予": "应当", "应予以": "应当", "必须": "应当",
    "须": "应当", "务必": "应当",
    "不得": "不得", "禁止": "不得", "严禁": "不得", "不准": "不得", "不应": "不得", "不应当": "不得",
    "可以": "可以", "可": "可以", "允许": "可以", "有权": "可以",
}  # fmt: skip
_NEGATABLE = {"应当", "应", "应该", "可以", "可", "允许", "准"}
# A bound stated as a prohibition (不得超过1个月) is also an obligation (应当在1个月内).
_BOUND = re.compile(r"不得(?:超过|少于|低于|高于|迟于|早于|晚于)")
_TITLE = re.compile(r"《[^》]*》")
_PARTY_HEAD = re.compile(r"(单位|部门|机关|机构|政府|委员会|人|企业|公司|经理|银行|法院|董事会|项目部)$")
_ADJACENT_SUB = {"款", "项"}
_LEAD_BREAKS = "，,。；;：:！？\n"


@dataclass(frozen=True)
class Modal:
    """A modal verb at ``text[start:end]`` and its class (``应当``, ``不得``, ``可以``)."""

    start: int
    end: int
    surface: str
    cls: str


_CACHE = 16384
"""Sentences whose atoms are kept: answers quote the manuals' sentences again and again (the
extractive backend only ever quotes them), and segmenting them was most of a verification."""


@lru_cache(maxsize=_CACHE)
def modal_spans(text: str) -> tuple[Modal, ...]:
    """Every modal verb in ``text`` in order, with its character span."""
    found: list[Modal] = []
    tokens = default_tokenizer().words(text, hmm=False)
    pos = 0
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok == "不" and nxt in _NEGATABLE:
            found.append(Modal(pos, pos + 1 + len(nxt), tok + nxt, "不得"))
        elif tok in MODALITY and not (i > 0 and tokens[i - 1] == "不"):
            found.append(Modal(pos, pos + len(tok), tok, MODALITY[tok]))
        pos += len(tok)
    return tuple(found)


def modal_classes(text: str) -> list[tuple[str, str]]:
    """``(surface, class)`` of every modal verb in ``text`` in order (``[("应", "应当")]``)."""
    return [(m.surface, m.cls) for m in modal_spans(text)]


def tail(text: str, pos: int) -> str:
    """The text from ``pos`` to the next comma, colon or sentence end (what a modal governs)."""
    ends = [i for ch in _LEAD_BREAKS if (i := text.find(ch, pos)) >= 0]
    return text[pos : min(ends, default=len(text))]


def lead(text: str, pos: int) -> str:
    """The text from the last comma, colon or sentence end before ``pos`` up to ``pos``."""
    start = max(text.rfind(ch, 0, pos) for ch in _LEAD_BREAKS) + 1
    return text[start:pos]


def mask_titles(text: str) -> str:
    """Blank out 《...》 titles (same length) so 企业 in 《企业会计准则》 is not a party claim."""
    return _TITLE.sub(lambda m: " " * len(m.group(0)), text)


def find_parties(text: str, lexicon: Iterable[str]) -> list[str]:
    """Party names of ``lexicon`` in ``text``, longest first where they overlap, in text order."""
    hits: list[tuple[int, int, str]] = []
    for name in lexicon:
        start = text.find(name)
        while start >= 0:
            hits.append((start, start + len(name), name))
            start = text.find(name, start + 1)
    hits.sort(key=lambda h: (-(h[1] - h[0]), h[0]))
    taken: list[tuple[int, int, str]] = []
    for s, e, name in hits:
        if all(e <= ts or te <= s for ts, te, _ in taken):
            taken.append((s, e, name))
    return [name for _, _, name in sorted(taken)]


def is_party_name(name: str) -> bool:
    """Whether a triple subject/object untyped by the graph looks like a party (…单位, …人)."""
    return 2 <= len(name) <= 16 and bool(_PARTY_HEAD.search(name))


@lru_cache(maxsize=_CACHE)
def answer_quantities(text: str) -> tuple[Quantity, ...]:
    """Quantities and article numbers an answer sentence claims.

    A 款/项 written right after a 条 (第五条第二款) points inside that article, whose paragraph
    structure the evidence does not carry; it is left to the 条 check.
    """
    found = extract_quantities(text)
    kept: list[Quantity] = []
    for q in found:
        if q.kind == "article" and q.unit in _ADJACENT_SUB and kept:
            prev = kept[-1]
            if prev.kind == "article" and text[prev.span[1] : q.span[0]].strip() in ("", "的"):
                continue
        kept.append(q)
    return tuple(kept)


@dataclass(frozen=True)
class ClauseFacts:
    """What one clause version supports, normalized once and cached by the verifier.

    Attributes:
        quantities: normalized amounts, rates, durations, multiples and dates of the text and triples.
        articles: normalized article numbers: the clause's own number, those written in its text,
            its document title and section path.
        modalities: modality classes of the text and of the triples' predicates.
        modals: each modal verb of the text with the bigrams of the words it governs and the
            text before it (see :meth:`governing`).
        haystack: text, title and triple subjects/objects, searched for party names.
        parties: party names the triples name (grow the lexicon for this answer).
        bigrams: character bigrams of the normalized content (the support score's reference).
        segments: the clause text's sentences with their bigrams (where quotes are cut).
        asserted_quantities: normalized quantities that only editor-asserted triples state.
        asserted_haystack: the subjects and objects of editor-asserted triples (party names).
    """

    quantities: frozenset[str]
    articles: frozenset[str]
    modalities: frozenset[str]
    modals: tuple[tuple[Modal, frozenset[str], str], ...]
    haystack: str
    parties: frozenset[str]
    bigrams: frozenset[str]
    segments: tuple[Segment, ...]
    asserted_quantities: frozenset[str] = frozenset()
    asserted_haystack: str = ""

    def governing(self, tail: frozenset[str]) -> list[tuple[str, str]]:
        """The clause's modal verbs whose following words best match ``tail`` (bigrams).

        Lets the verifier check a modal where it stands: "编报的财务会计报告可以折算为人民币"
        against a clause saying "应当折算为人民币" fails even though the clause uses 可以 elsewhere.

        Returns:
            ``(class, lead)`` of the best matching modal(s) (at least half of ``tail`` found in
            what follows them), ``lead`` being the clause text from the previous comma or full
            stop up to the modal (where its subject is written); empty when none matches.
        """
        if len(tail) < 2:
            return []
        scored = [(len(tail & grams) / len(tail), m.cls, before) for m, grams, before in self.modals]
        best = max((score for score, _, _ in scored), default=0.0)
        if best < 0.5:
            return []
        return [(cls, before) for score, cls, before in scored if score == best]


def clause_facts(clause: EvidenceClause, text_bigrams: frozenset[str]) -> ClauseFacts:
    """Collect the normalized facts of one clause version (see :class:`ClauseFacts`)."""
    quantities: set[str] = set()
    articles: set[str] = set()
    sources = [clause.text, *clause.tables]
    triple_texts: list[str] = []
    spans = modal_spans(clause.text)
    modals = tuple((m, bigrams(content(tail(clause.text, m.end))), lead(clause.text, m.start)) for m in spans)
    modalities = {m.cls for m in spans}
    if _BOUND.search(clause.text):
        modalities.add("应当")
    parties: set[str] = set()
    asserted_sources: list[str] = []
    asserted_texts: list[str] = []
    for t in clause.triples:
        if t.asserted:  # the editor's word, not the clause's: kept apart so the verifier can say so
            surface = t.qualifiers.get("surface")
            asserted_sources += [t.object, *([surface] if isinstance(surface, str) else [])]
            asserted_texts += [t.subject, t.object]
            parties.update(n for n in (t.subject, t.object) if is_party_name(n))
            continue
        if t.predicate in MODALITY:
            modalities.add(MODALITY[t.predicate])
        triple_texts += [t.subject, t.object]
        surface = t.qualifiers.get("surface")
        if isinstance(surface, str):
            sources.append(surface)
        sources.append(t.object)
        for name, kind in ((t.subject, t.subject_type), (t.object, t.object_type)):
            if kind == "party" or (kind is None and is_party_name(name)):
                parties.add(name)
    for source in sources:
        for q in extract_quantities(source):
            (articles if q.kind == "article" else quantities).add(q.normalized)
    for source in [clause.number, clause.doc_title, *clause.section_path]:
        articles.update(q.normalized for q in extract_quantities(source, {"article"}))
    own = normalize_atom(clause.number)
    if own.startswith("第"):
        articles.add(own)
    haystack = "\n".join([clause.text, clause.doc_title, *clause.tables, *triple_texts])
    asserted_quantities = {
        q.normalized for source in asserted_sources for q in extract_quantities(source) if q.kind != "article"
    }
    return ClauseFacts(
        frozenset(quantities),
        frozenset(articles),
        frozenset(modalities),
        modals,
        haystack,
        frozenset(parties),
        text_bigrams,
        segments(clause.text),
        frozenset(asserted_quantities - quantities),
        "\n".join(asserted_texts),
    )
