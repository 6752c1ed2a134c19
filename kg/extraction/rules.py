"""The extraction rules: each turns one sentence (or one clause) into triple drafts.

Rules see a :class:`UnitContext`: one text of a clause (its body or an item the body does not
repeat) with its spaCy parties and modal verbs. They return :class:`Draft` values; the extractor
gives them ids, entities and provenance. Rules favour precision: when a subject cannot be found
they fall back to the clause's last subject, with a lower confidence, rather than guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from ingest.types import ClauseItem, ClauseNode
from kg.extraction.text import noun_phrase, segment_end, segment_start, trim_action
from kg.normalize import Quantity, extract_quantities, format_number
from zhtext import CJK, DEFINITION, ITEM_MARKER, Span

SubjectKind = Literal["party", "concept"] | None

_CONDITION = re.compile(
    r"(?P<all>同时)?(?:满足|符合|具备|具有|有)(?:下列|以下)(?:各项|全部)?(?:条件|情形|行为|情况)(?P<any>之一)?"
)
_INLINE_ITEM = re.compile(r"[（(][一二三四五六七八九十]+[）)]")
_COORDINATION = re.compile(r"^(?:和|与|及|以及|、|或者|或)$")
_RESPONSIBLE_VERB = re.compile(r"^(?:对.{1,40}?)?负责(?!人)")
_ADJECTIVAL_MODAL = re.compile(rf"^[{CJK}]{{1,4}}的")
_QUANTITY_PREDICATE = {"duration": "期限", "amount": "金额", "rate": "比例", "multiple": "比例"}


@dataclass
class Party:
    """A ``PARTY`` entity span of the spaCy doc, in character offsets of the unit text."""

    start: int
    end: int
    name: str


@dataclass
class Draft:
    """A triple before it gets its id and clause; ``*_kind`` says which entity an end is."""

    subject: str
    predicate: str
    object: str
    qualifiers: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.7
    subject_kind: SubjectKind = None
    object_kind: SubjectKind = None


@dataclass
class UnitContext:
    """One text of a clause with what the spaCy pipeline found in it.

    ``last_subject`` is shared across the units and sentences of one clause: a sentence without a
    subject of its own (因故不能按期开工的，应当…) inherits the subject of the one before.
    """

    clause: ClauseNode
    text: str
    parties: list[Party]
    modals: list[tuple[int, int, str, str]]
    topic: str
    last_subject: tuple[str, SubjectKind] | None = None


def _first_party(ctx: UnitContext, floor: int, pos: int) -> tuple[str, SubjectKind] | None:
    """The first party between ``floor`` and ``pos``, with the parties coordinated to it.

    Across commas the sentence-initial party is the grammatical subject (企业与同一客户…订立的
    合同，…应当合并: 企业, not 客户).
    """
    between = [p for p in ctx.parties if floor <= p.start and p.end <= pos]
    if not between:
        return None
    first = between[0]
    end = first.end
    for nxt in between[1:]:
        if _COORDINATION.match(ctx.text[end : nxt.start]):
            end = nxt.end
        else:
            break
    if end != first.end:
        return ctx.text[first.start : end], None
    return first.name, "party"


def _nearest_party(ctx: UnitContext, floor: int, pos: int) -> tuple[str, SubjectKind] | None:
    """The party that ends closest before ``pos`` (and after ``floor``); coordinations merge."""
    before = [p for p in ctx.parties if floor <= p.start and p.end <= pos]
    if not before:
        return None
    last = before[-1]
    start = last.start
    for prev in reversed(before[:-1]):
        if _COORDINATION.match(ctx.text[prev.end : start]):
            start = prev.start
        else:
            break
    if start != last.start:
        return ctx.text[start : last.end], None
    return last.name, "party"


def subject_before(ctx: UnitContext, sentence: Span, pos: int) -> tuple[str, SubjectKind, float]:
    """The subject of whatever starts at ``pos``: nearest party, a noun phrase, or inherited.

    The order mirrors how the clauses are written: a party in the same comma segment first
    (企业通常应当…), then the segment's own words (存货应当…), then a party earlier in the sentence
    (需要领用发票的单位和个人，应当…; the first one, which is the subject across commas), then the previous segment unless it is a condition ending
    in 的/时, then the clause's last subject, then the clause topic.
    """
    seg = segment_start(ctx.text, pos, sentence.start)
    found = _nearest_party(ctx, seg, pos)
    if found:
        return found[0], found[1], 0.85
    phrase = noun_phrase(ctx.text[seg:pos])
    if phrase:
        return phrase, None, 0.75
    found = _first_party(ctx, sentence.start, pos)
    if found:
        return found[0], found[1], 0.7
    if seg > sentence.start:
        prev_start = segment_start(ctx.text, seg - 1, sentence.start)
        prev = ctx.text[prev_start : seg - 1].strip()
        if prev and not prev.endswith(("的", "时", "后", "前", "外")):
            phrase = noun_phrase(prev)
            if phrase:
                return phrase, None, 0.6
    if ctx.last_subject:
        return ctx.last_subject[0], ctx.last_subject[1], 0.55
    return ctx.topic, None, 0.4


def definitions(ctx: UnitContext, sentence: Span) -> list[Draft]:
    """``X，是指Y`` / ``本准则所称X，是指Y`` -> (X, 定义, Y); X becomes a concept."""
    m = DEFINITION.match(ctx.text[sentence.start : sentence.end].strip())
    if not m:
        return []
    term = m.group("term").strip(' “”"')
    body = trim_action(m.group("body"), max_len=400)
    if not term or not body:
        return []
    ctx.last_subject = (term, "concept")
    return [Draft(term, "定义", body, {"surface": m.group(0)[:60]}, 0.9, "concept")]


def _in_definition(ctx: UnitContext, sentence: Span, pos: int) -> bool:
    head = ctx.text[sentence.start : pos]
    return "是指" in head or "系指" in head


def obligations(ctx: UnitContext, sentence: Span) -> list[Draft]:
    """One (subject, 应当|不得|可以|必须, action) per modal verb of the sentence.

    The action runs from the modal to the end of the sentence, or to the comma before the next
    modal's segment. Adjectival uses (依法应当保存的会计凭证) and modals inside a definition are
    skipped: they describe, they do not oblige.
    """
    modals = [m for m in ctx.modals if sentence.start <= m[0] < sentence.end]
    drafts = []
    for i, (start, end, predicate, surface) in enumerate(modals):
        stop = sentence.end
        if i + 1 < len(modals):
            nxt = modals[i + 1][0]
            nxt_seg = segment_start(ctx.text, nxt, start)
            stop = nxt_seg - 1 if nxt_seg > end else nxt
        seg_stop = segment_end(ctx.text, end, sentence.end)
        if _ADJECTIVAL_MODAL.match(ctx.text[end:seg_stop]) or _in_definition(ctx, sentence, start):
            continue
        action = trim_action(ctx.text[end:stop])
        if not action:
            continue
        subject, kind, confidence = subject_before(ctx, sentence, start)
        ctx.last_subject = (subject, kind)
        drafts.append(Draft(subject, predicate, action, {"surface": surface}, confidence, kind))
    return drafts


def responsibilities(ctx: UnitContext, sentence: Span) -> list[Draft]:
    """(party, 责任主体, action) for 由X负责/由X审批/由X责令… and X负责… / X对…负责."""
    drafts = []
    for party in ctx.parties:
        if not sentence.start <= party.start < sentence.end:
            continue
        after = ctx.text[party.end : sentence.end]
        if after.startswith("负责人"):
            continue  # 由会计机构负责人…: the party is the 负责人, not the 机构
        by = ctx.text[max(sentence.start, party.start - 1) : party.start] == "由"
        if by or _RESPONSIBLE_VERB.match(after):
            action = trim_action(after)
            if action:
                qualifiers = {"surface": ("由" if by else "") + party.name}
                drafts.append(Draft(party.name, "责任主体", action, qualifiers, 0.8, "party"))
    return drafts


def _quantity_subject(ctx: UnitContext, sentence: Span, q: Quantity) -> tuple[str, SubjectKind, float]:
    """``X为Q`` names its subject (征收率为3%); otherwise the subject is found as for a modal."""
    seg = segment_start(ctx.text, q.span[0], sentence.start)
    copula = re.fullmatch(r"(.+?)(?:分别)?(?:为|是)", ctx.text[seg : q.span[0]])
    phrase = noun_phrase(copula.group(1)) if copula else None
    if phrase:
        return phrase, None, 0.8
    return subject_before(ctx, sentence, q.span[0])


def quantities(ctx: UnitContext, sentence: Span) -> list[Draft]:
    """Durations, amounts, rates and multiples -> 期限/金额/比例, or 阈值 when bounded.

    Durations stay 期限 even when bounded (十五日内 is a deadline); a bounded amount or rate
    (二十万元以上, 千分之五以下) is a 阈值. The qualifiers keep the surface, unit, comparator and
    the comma segment the number sits in, which is what a reader needs to tell two fines apart.
    """
    text = ctx.text[sentence.start : sentence.end]
    drafts = []
    for q in extract_quantities(text, {"duration", "amount", "rate", "multiple"}):
        shifted = Quantity(
            q.kind,
            q.value,
            q.unit,
            q.surface,
            (q.span[0] + sentence.start, q.span[1] + sentence.start),
            q.comparator,
        )
        predicate = _QUANTITY_PREDICATE[q.kind]
        if q.comparator and q.kind != "duration":
            predicate = "阈值"
        subject, kind, confidence = _quantity_subject(ctx, sentence, shifted)
        seg_a = segment_start(ctx.text, shifted.span[0], sentence.start)
        seg_b = segment_end(ctx.text, shifted.span[1], sentence.end)
        qualifiers = {
            "surface": q.surface,
            "kind": q.kind,
            "value": format_number(float(q.value)),
            "unit": q.unit,
            "comparator": q.comparator,
            "context": ctx.text[seg_a:seg_b],
        }
        drafts.append(Draft(subject, predicate, q.normalized, qualifiers, min(confidence, 0.8), kind))
    return drafts


def _items_after(ctx: UnitContext, pos: int, trigger: str, items: list[ClauseItem]) -> list[str]:
    """The items a trigger introduces: the children of the paragraph (款) that states it.

    Trees list 款 and 项 together (``第一款`` at level 1, ``（一）`` at level 2); the condition
    items are the deeper ones right after the item holding the trigger. When no item holds it
    (a tree with 项 only), the shallowest items are taken; with no items at all, the inline
    （一）（二） markers of the text are split.
    """
    holder = next((i for i, item in enumerate(items) if trigger in item.text), None)
    if holder is not None:
        level = items[holder].level
        children: list[ClauseItem] = []
        for item in items[holder + 1 :]:
            if item.level <= level:
                break
            children.append(item)
        if children:
            top = min(i.level for i in children)
            return [ITEM_MARKER.sub("", i.text) for i in children if i.level == top]
    candidates = [i for i in items if trigger not in i.text]
    if candidates:
        top = min(i.level for i in candidates)
        return [ITEM_MARKER.sub("", i.text) for i in candidates if i.level == top]
    parts = _INLINE_ITEM.split(ctx.text[pos:])
    return parts[1:] if len(parts) > 2 else []


def conditions(ctx: UnitContext, sentence: Span, items: list[ClauseItem]) -> list[Draft]:
    """同时满足下列条件 / 满足下列条件之一 / 有下列情形之一 + items -> one 条件 triple per item.

    The subject is what the condition is about (当企业与客户之间的合同同时满足… -> 企业与客户之间的
    合同); when the sentence opens with the trigger (有下列情形之一的，由…), the consequence stands
    in. ``all`` tells conjunctive lists from disjunctive ones.
    """
    text = ctx.text[sentence.start : sentence.end]
    m = _CONDITION.search(text)
    if not m:
        return []
    texts = [
        trim_action(t, max_len=300) for t in _items_after(ctx, sentence.start + m.end(), m.group(0), items)
    ]
    texts = [t for t in texts if t]
    if not texts:
        return []
    before = re.sub(r"^(?:当|如果|若|在|对于|凡)", "", text[: m.start()].strip())
    subject = noun_phrase(before, max_len=30)
    kind: SubjectKind = None
    if subject is None:
        party = _nearest_party(ctx, sentence.start, sentence.start + m.start())
        if party:
            subject, kind = party
    if subject is None:
        rest = re.sub(r"^(?:的|时)?[，,]?", "", text[m.end() :])
        consequence = trim_action(re.split(r"[，,]", rest, maxsplit=1)[0], max_len=40)
        subject = consequence or ctx.topic
    all_required = not m.group("any")
    return [
        Draft(
            subject,
            "条件",
            item,
            {"all": all_required, "index": index, "trigger": m.group(0), "rule": trim_action(text, 300)},
            0.8,
            kind,
        )
        for index, item in enumerate(texts, start=1)
    ]
