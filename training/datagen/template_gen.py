"""Template-based QA generation: candidates found in the snapshot, questions from the template bank.

Every answer is made of verbatim sentences of its gold clauses (table rows as ``render_table``
writes them), each followed by the ``[[CLAUSE_ID]]`` marker of the clause it comes from, so the
``kg`` verifier can check it against exactly the evidence ``context.build_evidence`` gives. The
question is the only free text, and it is never verified: it comes from the YAML templates.

Determinism: each (question type, clause) and each table draws from its own ``random.Random``
seeded with the config seed and that id, so a ``--since`` build over a few clauses produces the same
pairs for them as a full build, and pair ids (a hash of type, template, gold ids and question) are
stable across rebuilds.

Rejection reasons (counted in the report): ``no_definition_sentence``, ``quantity_not_in_text``,
``modal_not_in_text``, ``no_condition_items``, ``no_steps``, ``reference_sentence_not_found``,
``table_without_clause``, ``table_without_rows``, ``answer_too_long``, ``no_template``,
``duplicate_question``, ``topic_in_graph`` (an out-of-scope topic the graph does mention).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm import tqdm

from kg.citations import format_marker
from kg.prompting import REFUSAL_ANSWER
from training.datagen.context import render_table
from training.datagen.templates import TemplateBank
from training.datagen.types import (
    DIFFICULTIES,
    QUESTION_TYPES,
    STYLES,
    GraphSnapshot,
    QAPair,
    Rejection,
    SourceClause,
    SourceTable,
    SourceTriple,
)
from zhtext import (
    CLAUSE_NUMBER,
    COLONS,
    CONTENT_CHAR,
    DEFINITION,
    ITEM_MARKER,
    SENTENCE_ENDS,
    split_sentences,
)

log = structlog.get_logger(__name__)

_ANSWERABLE = tuple(t for t in QUESTION_TYPES if t != "unanswerable")


class TemplateGenConfig(BaseModel):
    """How many template pairs of which kind to write; the defaults suit a full build."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, description="Seed of every random choice (templates, distractors, CoT, topics).")
    per_clause: int = Field(2, ge=1, description="Most questions of one type per clause.")
    types: tuple[str, ...] = Field(QUESTION_TYPES, description="Question types to generate.")
    cot_ratio: float = Field(0.2, ge=0.0, le=1.0, description="Share of answerable pairs in 分析/依据/结论 form.")
    distractors: int = Field(2, ge=0, description="Non-gold clauses added to each prompt's context.")
    unanswerable_count: int | None = Field(
        None, ge=0, description="Unanswerable pairs; None: unanswerable_ratio of the answerable ones."
    )
    unanswerable_ratio: float = Field(0.05, ge=0.0, le=1.0, description="Used when unanswerable_count is None.")
    unanswerable_min: int = Field(5, ge=0, description="Floor of the ratio-based unanswerable count.")
    difficulty_mix: dict[str, float] = Field(
        default_factory=lambda: {"基础": 0.4, "进阶": 0.4, "综合": 0.2},
        description="Relative weight of each difficulty (among those a type's templates serve).",
    )
    style_mix: dict[str, float] = Field(
        default_factory=lambda: {"formal": 0.6, "everyday": 0.4}, description="Relative weight of each style."
    )
    long_ratio: float = Field(0.35, ge=0.0, le=1.0, description="Share of long question phrasings.")
    table_rows: int = Field(8, ge=1, description="Most row questions per table.")
    max_items: int = Field(12, ge=1, description="Most items (conditions, steps) listed in one answer.")
    max_answer_chars: int = Field(700, ge=50, description="Longer answers are rejected (answer_too_long).")
    reference_chars: int = Field(220, ge=20, description="How much of a referenced clause a multi-hop answer quotes.")

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(QUESTION_TYPES))
        if unknown:
            raise ValueError(f"unknown question types {unknown}; known: {list(QUESTION_TYPES)}")
        return value

    @field_validator("difficulty_mix", "style_mix")
    @classmethod
    def _weights(cls, value: dict[str, float], info: Any) -> dict[str, float]:
        known = DIFFICULTIES if info.field_name == "difficulty_mix" else STYLES
        unknown = sorted(set(value) - set(known))
        if unknown:
            raise ValueError(f"unknown keys {unknown}; known: {list(known)}")
        if any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
            raise ValueError("weights must be non-negative with at least one positive")
        return value


# --- text helpers ---------------------------------------------------------------------------------

_COPULA_DEFINITION = re.compile(r"^[“\"]?(?P<term>[^，,。；：“”\"]{2,20}?)[”\"]?，是[^。；]{4,}的")
_CONDITION = re.compile(
    r"(?:同时)?(?:满足|符合|具备|具有|存在|属于|发生|有)(?:下列|以下)(?:各项|全部|所有)?"
    r"(?:条件|要求|情形|情况|规定|标准)(?:之一)?"
)
# The sentence that introduces a list of steps: 按下列程序/顺序/时限办理, 依次…, 流程如下.
_PROCEDURE_LEAD = re.compile(
    r"(?:按|依|遵循).{0,4}(?:下列|以下)(?:程序|步骤|流程|顺序|环节|时限)|依次|流程如下|步骤如下|程序如下"
)
_TRAILING_VERB = re.compile(r"(?:为|是|达|达到|超过|不超过|不得超过|不少于|不低于|低于|高于|满|以内|以上|以下|内)$")
_LEADING_MODAL = re.compile(r"^(?:应当|应|须|必须|均|并)+")
_PROCEDURE_TOPIC = re.compile(
    r"(?P<topic>[^，,。；：]{2,20}?)(?:应当|应)?(?:按照|按|依照|遵循)(?:下列|以下)(?:程序|步骤|流程)"
)
_ORDER_WORDS = re.compile(r"^(?:首先|然后|其次|随后|之后|最后|再|接着)")
_SECTION_NUMBER = re.compile(
    r"^\S*[章节条款编部分]\s+|^[\d.§]+\s+|^附(?:表|件|录)\S*\s+|^[一二三四五六七八九十]+、?\s+|^[（(][一二三四五六七八九十\d]+[）)]\s*"
)
_QUANTITY_PREDICATES = {"期限": "duration", "金额": "amount", "比例": "rate", "阈值": "threshold"}
_QUANTITY_WORDS = {"期限": "期限", "金额": "金额", "比例": "比例", "阈值": "标准"}
_MODAL_VARIANTS = {"应当": "must", "必须": "must", "不得": "must_not", "禁止": "must_not", "可以": "may"}
_SLOT_EDGES = " \t，,。；;：:、的"
# A slot cut in the middle of a phrase (…期限未而 / 或者…) reads as garbage: such values are dropped.
_DANGLING = re.compile(r"(?:未|而|或|或者|和|及|与|在|于|按|不|对|向|以|由|将|为|被|第)$|^(?:或者|而|但|并且|以及|及|和)")
_NUMBER = re.compile(r"(百分之|千分之)[零〇一二两三四五六七八九十百点.0-9]+|[0-9０-９][0-9０-９.,]*%|[0-9０-９][0-9０-９.,]*|[零〇一二两三四五六七八九十百千万亿]+")
_MIN_ROW_CONTENT = 6


def body_text(clause: SourceClause) -> str:
    """The clause text without the article number it opens with (第五条 …)."""
    text = clause.text.strip()
    if clause.number and text.startswith(clause.number):
        text = text[len(clause.number) :].lstrip()
    return text


def body_sentences(clause: SourceClause) -> list[str]:
    """The clause's sentences (ends kept), split where the verifier splits answers."""
    return split_sentences(body_text(clause))


def cite(pieces: Iterable[tuple[str, str]]) -> str:
    """Verbatim text pieces as an answer: every sentence followed by its clause's marker.

    ``A。B；`` from clause X becomes ``A[[X]]。B[[X]]；``; a sentence ending in a colon (下列条件：)
    keeps it after the marker, and one without an end gets a full stop.
    """
    out: list[str] = []
    for text, clause_id in pieces:
        for sentence in split_sentences(text):
            core = ITEM_MARKER.sub("", sentence).rstrip(" \t，," + COLONS + SENTENCE_ENDS)
            if not core:
                continue
            last = sentence.rstrip()[-1]
            end = last if last in "。！？；" else ("：" if last in "：:" else "。")
            out.append(f"{core}{format_marker(clause_id)}{end}")
    return "".join(out)


def _bare(title: str) -> str:
    """A title without the 《》 or “” it may already carry, so wrapping it once is right."""
    title = title.strip()
    if title.startswith("《") and title.endswith("》") and title.count("《") == 1:
        return title[1:-1]
    title = title.strip("“”\"")
    return title.replace("《", "〈").replace("》", "〉")  # nested titles: 《〈准则〉应用指南》


def section_title(clause: SourceClause) -> str:
    """The innermost section heading without its number (计量与进度款), else the document title."""
    for heading in reversed(clause.section_path):
        number, _, rest = heading.partition(" ")
        title = rest.strip() if number in ("序言", "正文") else _SECTION_NUMBER.sub("", heading).strip()
        if title and title not in ("序言", "正文", clause.doc_title):
            return title
    return clause.doc_title


def clause_label(clause: SourceClause, from_doc: str | None = None) -> str:
    """How a question names a clause: 第五条, or “差旅费标准”部分 where there is no article number.

    With ``from_doc`` set to another document's id, the label carries this clause's title.
    """
    own = clause.number if clause.number.startswith("第") else f"“{_bare(section_title(clause))}”部分"
    return own if from_doc in (None, clause.doc_id) else f"《{_bare(clause.doc_title)}》{own}"


def _clean_slot(value: str, limit: int = 30) -> str:
    """A slot value: no spaces or edge punctuation, cut at a comma before ``limit``, never inside 《》."""
    value = re.sub(r"\s+", "", value).strip(_SLOT_EDGES)
    if len(value) > limit:  # cut at a comma; a value with none to cut at would end mid-word: dropped
        cut = max(value.rfind(ch, 0, limit) for ch in "，,、")
        value = value[:cut] if cut >= 4 else ""
    if value.count("《") > value.count("》"):
        value = value[: value.rfind("《")]
    value = value.strip(_SLOT_EDGES)
    return "" if _DANGLING.search(value) else value


def _weighted(rng: random.Random, weights: dict[str, float], allowed: Sequence[str]) -> str:
    keys = [k for k in allowed if weights.get(k, 0) > 0] or list(allowed)
    return rng.choices(keys, weights=[weights.get(k, 0) or 1.0 for k in keys])[0]


def pair_id(qtype: str, template_id: str, gold_ids: Iterable[str], question: str) -> str:
    """Stable id of a pair: a short sha256 of its type, template, gold ids and question."""
    key = "\x1f".join([qtype, template_id, ",".join(sorted(gold_ids)), question])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


# --- candidates -----------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A candidate before its template is chosen: gold clauses, slot values and answer pieces."""

    qtype: str
    gold: list[str]
    slots: dict[str, str]
    pieces: list[tuple[str, str]]
    key_pieces: list[tuple[str, str]]
    variant: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    short_pieces: list[tuple[str, str]] | None = None


def _base_slots(clause: SourceClause) -> dict[str, str]:
    return {"doc": _bare(clause.doc_title), "topic": _bare(section_title(clause)), "number": clause_label(clause)}


def _sentence_with(sentences: Sequence[str], *needles: str) -> str | None:
    wanted = [n for n in needles if n]
    return next((s for s in sentences if wanted and all(n in s for n in wanted)), None)


def _definitions(clause: SourceClause, cfg: TemplateGenConfig) -> tuple[list[_Draft], list[Rejection]]:
    sentences = body_sentences(clause)
    found: list[tuple[str, str, int]] = []
    for i, s in enumerate(sentences):
        bare = ITEM_MARKER.sub("", s)
        m = DEFINITION.match(bare) or _COPULA_DEFINITION.match(bare)
        term = _clean_slot(m.group("term"), 20) if m else ""
        if m and len(term) >= 2 and not term.endswith(("所称", "所称的")) and term not in {t for t, _, _ in found}:
            found.append((term, s, i))
    if not found:
        if any(t.predicate == "定义" for t in clause.triples) or any(
            w in clause.text for w in ("是指", "系指", "指的是")
        ):
            return [], [Rejection("no_definition_sentence", "definition", [clause.clause_id], "no 'X，是指…' sentence")]
        return [], []
    drafts = []
    for term, sentence, i in found[: cfg.per_clause]:
        pieces = [(sentence, clause.clause_id)]
        if sentence.rstrip().endswith(("：", ":")):
            pieces += [(item, clause.clause_id) for item in clause.items[: cfg.max_items]]
            if not clause.items:
                pieces += [(s, clause.clause_id) for s in sentences[i + 1 : i + 1 + cfg.max_items]]
        drafts.append(
            _Draft("definition", [clause.clause_id], {**_base_slots(clause), "term": term}, pieces, pieces[:1])
        )
    return drafts, []


def _quantity_action(triple: SourceTriple, sentence: str) -> str:
    """What the quantity is about, as a question can name it: the number's comma segment without
    the number, the subject and the modal (缺陷责任期为二十四个月 -> 缺陷责任期)."""
    surface = str(triple.qualifiers.get("surface") or "")

    def clean(segment: str) -> str:
        if surface:
            segment = re.sub(r"(?:在|于|自|从|按)?" + re.escape(surface), "", segment)
        segment = CLAUSE_NUMBER.sub("", segment, count=1)
        if triple.subject and segment.startswith(triple.subject):
            segment = segment[len(triple.subject) :]
        segment = _LEADING_MODAL.sub("", segment.strip(_SLOT_EDGES))
        return _clean_slot(_TRAILING_VERB.sub("", _clean_slot(segment, 28)), 28)

    action = clean(str(triple.qualifiers.get("context") or sentence))
    if len(action) < 4:
        first = re.split(r"[，,；;]", sentence, maxsplit=1)[0]
        action = clean(first) if not surface or surface not in first else ""
    return action if len(action) >= 4 else ""


def _quantity_ask(triple: SourceTriple, sentence: str) -> str:
    """The number's comma segment asked about: 应当在七日内书面提出 -> 分包单位应当在多少日内书面提出."""
    surface = str(triple.qualifiers.get("surface") or "")
    context = str(triple.qualifiers.get("context") or "")
    if not surface or surface not in context:
        return ""
    m = _NUMBER.search(surface)
    if m is None:
        return ""
    asked = "百分之多少" if m.group(0).endswith("%") else (m.group(1) or "") + "多少"
    ask = context.replace(surface, surface[: m.start()] + asked + surface[m.end() :], 1)
    ask = CLAUSE_NUMBER.sub("", ask, count=1).strip(_SLOT_EDGES)
    subject = _clean_slot(triple.subject, 12)
    if subject and subject not in ask and not re.match(r"^[^，,]{0,8}(?:的|时|后)[，,]", ask):
        ask = subject + ask
    return ask if 6 <= len(ask) <= 45 and "多少" in ask else ""


def _facts(clause: SourceClause, cfg: TemplateGenConfig) -> tuple[list[_Draft], list[Rejection]]:
    sentences = body_sentences(clause)
    drafts: list[_Draft] = []
    rejections: list[Rejection] = []
    used: set[str] = set()
    for t in clause.triples:
        if t.predicate not in _QUANTITY_PREDICATES or len(drafts) >= cfg.per_clause:
            continue
        surface = str(t.qualifiers.get("surface") or "")
        sentence = _sentence_with(sentences, surface) or _sentence_with(sentences, str(t.qualifiers.get("context") or ""))
        if sentence is None:
            detail = f"{t.predicate} {surface or t.object!r} not found in the clause sentences"
            rejections.append(Rejection("quantity_not_in_text", "fact", [clause.clause_id], detail))
            continue
        if sentence in used:
            continue
        used.add(sentence)
        subject = _clean_slot(t.subject, 16)
        slots = {
            **_base_slots(clause),
            "subject": subject,
            "action": _quantity_action(t, sentence),
            "ask": _quantity_ask(t, sentence),
            "quantity_kind": _QUANTITY_WORDS[t.predicate],
        }
        pieces = [(sentence, clause.clause_id)]
        drafts.append(
            _Draft("fact", [clause.clause_id], slots, pieces, pieces, _QUANTITY_PREDICATES[t.predicate],
                   {"triple": {"subject": t.subject, "predicate": t.predicate, "object": t.object}})
        )  # fmt: skip
    return drafts, rejections


def _obligations(clause: SourceClause, cfg: TemplateGenConfig) -> tuple[list[_Draft], list[Rejection]]:
    sentences = body_sentences(clause)
    drafts: list[_Draft] = []
    rejections: list[Rejection] = []
    used: set[str] = set()
    for t in clause.triples:
        if t.predicate not in _MODAL_VARIANTS or len(drafts) >= cfg.per_clause:
            continue
        modal = str(t.qualifiers.get("surface") or t.predicate)
        first = re.split(r"[，,；;]", t.object, maxsplit=1)[0]
        action = _clean_slot(first if len(first) >= 4 else t.object, 24)
        if action.startswith("由"):  # passive (由X负责…): "谁应当由X…" reads wrong
            action = ""
        probe = _clean_slot(t.object, 400)[:6]
        sentence = _sentence_with(sentences, modal, probe) or _sentence_with(sentences, probe)
        if sentence is None:
            detail = f"{t.subject} {t.predicate} {t.object[:30]!r} not found in the clause sentences"
            rejections.append(Rejection("modal_not_in_text", "obligation", [clause.clause_id], detail))
            continue
        subject = _clean_slot(t.subject, 16)
        if sentence in used or not subject or len(action) < 4:
            continue
        used.add(sentence)
        pieces = [(sentence, clause.clause_id)]
        slots = {**_base_slots(clause), "subject": subject, "action": action}
        drafts.append(
            _Draft("obligation", [clause.clause_id], slots, pieces, pieces, _MODAL_VARIANTS[t.predicate],
                   {"triple": {"subject": t.subject, "predicate": t.predicate, "object": t.object}})
        )  # fmt: skip
    return drafts, rejections


def _first_sentences(items: Sequence[str]) -> list[str]:
    return [(split_sentences(i) or [i])[0] for i in items]


def _conditions(clause: SourceClause, cfg: TemplateGenConfig) -> tuple[list[_Draft], list[Rejection]]:
    sentences = body_sentences(clause)
    trigger = next(((s, m) for s in sentences if (m := _CONDITION.search(s))), None)
    if trigger is None:
        return [], []
    sentence, m = trigger
    if not clause.items:
        return [], [Rejection("no_condition_items", "condition", [clause.clause_id], f"{m.group(0)} without items")]
    condition_subjects = [t.subject for t in clause.triples if t.predicate == "条件"]
    before = re.sub(r"^(?:当|如果|若|在|对于|凡)", "", sentence[: m.start()])
    before = re.sub(r"(?:应当|应|须|必须|均|都)$", "", before.strip(" ，,"))
    consequence = re.match(r"^的?[，,](?P<then>[^，,。；：]{2,16})[。；]?$", sentence[m.end() :])
    subject = _clean_slot(condition_subjects[0] if condition_subjects else before, 20)
    if subject and consequence:
        subject = subject + _LEADING_MODAL.sub("", consequence.group("then"))
    subject = subject or section_title(clause)
    items = list(clause.items[: cfg.max_items])
    pieces = [(sentence, clause.clause_id), *((i, clause.clause_id) for i in items)]
    short = [(sentence, clause.clause_id), *((i, clause.clause_id) for i in _first_sentences(items))]
    slots = {**_base_slots(clause), "subject": subject}
    return [_Draft("condition", [clause.clause_id], slots, pieces, pieces[:1], short_pieces=short)], []


def _procedures(clause: SourceClause, cfg: TemplateGenConfig) -> tuple[list[_Draft], list[Rejection]]:
    """Steps in order: the items a 按下列程序/顺序 sentence introduces, or 首先/然后 sentences."""
    sentences = body_sentences(clause)
    text = body_text(clause)
    if any(_CONDITION.search(s) for s in sentences):
        return [], []
    in_process_section = any(w in h for h in clause.section_path[-1:] for w in ("流程", "程序", "步骤"))
    lead = _list_lead(text, sentences, clause.items)
    ordered = [s for s in sentences if _ORDER_WORDS.match(s)]
    short: list[tuple[str, str]] | None = None
    if clause.items and lead is not None and (_PROCEDURE_LEAD.search(lead) or in_process_section):
        steps = list(clause.items[: cfg.max_items])
        pieces = [(lead, clause.clause_id), *((s, clause.clause_id) for s in steps)]
        short = [(lead, clause.clause_id), *((s, clause.clause_id) for s in _first_sentences(steps))]
    elif len(ordered) >= 2 or (in_process_section and not clause.items and len(sentences) >= 2):
        steps = sentences[: cfg.max_items]
        pieces = [(s, clause.clause_id) for s in steps]
    else:
        if lead is not None and _PROCEDURE_LEAD.search(lead) and not clause.items:
            return [], [Rejection("no_steps", "procedure", [clause.clause_id], "a list of steps without items")]
        return [], []
    if len(steps) < 2:
        return [], [Rejection("no_steps", "procedure", [clause.clause_id], "fewer than two steps")]
    topic_match = _PROCEDURE_TOPIC.search(text)
    topic = _clean_slot(topic_match.group("topic"), 20) if topic_match else ""
    if not topic:
        topic = re.sub(r"(?:的)?(?:流程|程序|步骤)$", "", section_title(clause)) or section_title(clause)
    slots = {**_base_slots(clause), "topic": topic}
    return [_Draft("procedure", [clause.clause_id], slots, pieces, pieces[:1], short_pieces=short)], []


def _list_lead(text: str, sentences: Sequence[str], items: Sequence[str]) -> str | None:
    """The sentence that introduces the clause's items (the one ending in a colon before them)."""
    if not items:
        return next((s for s in sentences if s.rstrip().endswith(("：", ":"))), None)
    first = text.find(items[0])
    if first < 0:
        return None
    before = [s for s in split_sentences(text[:first]) if s.rstrip().endswith(("：", ":"))]
    return before[-1] if before else None


def _quote(clause: SourceClause, limit: int) -> list[str]:
    """The opening sentences of a clause, up to ``limit`` characters (at least one)."""
    out: list[str] = []
    for s in body_sentences(clause):
        if out and sum(map(len, out)) + len(s) > limit:
            break
        out.append(s)
    return out


def _references(
    clause: SourceClause, snapshot: GraphSnapshot, cfg: TemplateGenConfig
) -> tuple[list[_Draft], list[Rejection]]:
    drafts: list[_Draft] = []
    rejections: list[Rejection] = []
    sentences = body_sentences(clause)
    for target_id in clause.refers_to:
        target = snapshot.clauses.get(target_id)
        if target is None or target_id == clause.clause_id or len(drafts) >= cfg.per_clause:
            continue
        anchor = (
            _sentence_with(sentences, target.number) if target.number.startswith("第") else None
        ) or _sentence_with(sentences, "《" + target.doc_title[:6])
        if anchor is None:
            detail = f"no sentence of {clause.clause_id} names {target_id}"
            rejections.append(Rejection("reference_sentence_not_found", "cross_reference", [clause.clause_id, target_id], detail))
            continue
        quoted = _quote(target, cfg.reference_chars)
        pieces = [(anchor, clause.clause_id), *((s, target_id) for s in quoted)]
        slots = {**_base_slots(clause), "other_number": clause_label(target, clause.doc_id)}
        drafts.append(
            _Draft("cross_reference", [clause.clause_id, target_id], slots, pieces,
                   [pieces[0], pieces[1]], extra={"path": [clause.clause_id, target_id]})
        )  # fmt: skip
    return drafts, rejections


def _key_sentence(clause: SourceClause) -> tuple[str, str] | None:
    """``(kind, sentence)``: the sentence stating a quantity (kind: the predicate, 期限/金额/…), else
    an obligation (kind ``modal``); what a comparison with a neighbour sets side by side."""
    sentences = body_sentences(clause)
    for t in clause.triples:
        if t.predicate in _QUANTITY_PREDICATES:
            found = _sentence_with(sentences, str(t.qualifiers.get("surface") or ""))
            if found:
                return t.predicate, found
    for t in clause.triples:
        if t.predicate in _MODAL_VARIANTS:
            modal = str(t.qualifiers.get("surface") or t.predicate)
            found = _sentence_with(sentences, modal, _clean_slot(t.object, 24)[:6])
            if found:
                return "modal", found
    return None


def _comparisons(
    clause: SourceClause, snapshot: GraphSnapshot, order: dict[str, int], cfg: TemplateGenConfig
) -> tuple[list[_Draft], list[Rejection]]:
    key = _key_sentence(clause)
    if key is None:
        return [], []
    kind, mine = key
    drafts = []
    for other_id in clause.neighbours:
        other = snapshot.clauses.get(other_id)
        if other is None or order.get(other_id, -1) <= order.get(clause.clause_id, -1):
            continue  # each neighbour pair once, from its earlier clause
        other_key = _key_sentence(other)
        if other_key is None or other_key[0] != kind:
            continue  # a deadline is compared with a deadline, an obligation with an obligation
        theirs = other_key[1]
        pieces = [(mine, clause.clause_id), (theirs, other_id)]
        slots = {**_base_slots(clause), "other_number": clause_label(other, clause.doc_id)}
        drafts.append(_Draft("comparison", [clause.clause_id, other_id], slots, pieces, pieces))
        if len(drafts) >= cfg.per_clause:
            break
    return drafts, []


def _row_keys(table: SourceTable) -> list[tuple[int, str]]:
    """(row index, key) of the usable rows: the leading cells that tell the row apart.

    Rows that repeat the header (tables split over pages), have fewer than two cells or say too
    little to be a claim (``2，u，9``) are not asked about.
    """
    rows = [
        (i, row) for i, row in enumerate(table.rows)
        if row != table.header and sum(1 for v in row if v.strip()) >= 2
        and len(CONTENT_CHAR.findall(_row_line(table, row))) >= _MIN_ROW_CONTENT
    ]  # fmt: skip
    keys: list[tuple[int, str]] = []
    for i, row in rows:
        for width in range(1, len(row) + 1):
            key = tuple(v.strip() for v in row[:width])
            if sum(1 for _, r in rows if tuple(v.strip() for v in r[:width]) == key) == 1 or width == len(row):
                keys.append((i, "、".join(v for v in key if v)))
                break
    return keys


def _row_line(table: SourceTable, row: tuple[str, ...]) -> str:
    if table.header and len(table.header) == len(row):
        return "，".join(f"{h}：{v}" for h, v in zip(table.header, row, strict=True) if v)
    return "，".join(v for v in row if v)


# --- the generator --------------------------------------------------------------------------------


class TemplateGenerator:
    """Writes QA pairs of every question type from a :class:`GraphSnapshot` with the template bank.

    Args:
        bank: the question templates (``TemplateBank.load()`` when None).
        config: counts, mixes and the seed (defaults when None).
    """

    def __init__(self, bank: TemplateBank | None = None, config: TemplateGenConfig | None = None) -> None:
        self.bank = bank if bank is not None else TemplateBank.load()
        self.config = config if config is not None else TemplateGenConfig()

    def generate(
        self, snapshot: GraphSnapshot, clause_ids: Collection[str] | None = None
    ) -> tuple[list[QAPair], list[Rejection]]:
        """Pairs and rejections for the snapshot's clauses (only ``clause_ids`` when given).

        A partial build (``clause_ids`` given, as ``--since`` does) writes the pairs whose gold
        includes one of those clauses, and no unanswerable pairs: those are about no clause and are
        carried over from the previous build.
        """
        cfg = self.config
        scope = set(snapshot.clauses) if clause_ids is None else set(clause_ids) & set(snapshot.clauses)
        order = {cid: i for i, cid in enumerate(snapshot.clauses)}
        pairs: list[QAPair] = []
        rejections: list[Rejection] = []
        seen_questions: set[str] = set()

        def emit(drafts: list[_Draft], rejected: list[Rejection], rng_key: str) -> None:
            rejections.extend(rejected)
            rng = random.Random(f"{cfg.seed}:{rng_key}")
            for draft in drafts:
                made = self._finish(draft, snapshot, rng)
                if isinstance(made, Rejection):
                    rejections.append(made)
                elif made.question in seen_questions:
                    rejections.append(Rejection("duplicate_question", made.qtype, list(made.gold), "", made.question))
                else:
                    seen_questions.add(made.question)
                    pairs.append(made)

        builders: dict[str, Callable[[SourceClause], tuple[list[_Draft], list[Rejection]]]] = {
            "definition": lambda c: _definitions(c, cfg),
            "fact": lambda c: _facts(c, cfg),
            "obligation": lambda c: _obligations(c, cfg),
            "condition": lambda c: _conditions(c, cfg),
            "procedure": lambda c: _procedures(c, cfg),
            "cross_reference": lambda c: _references(c, snapshot, cfg),
            "comparison": lambda c: _comparisons(c, snapshot, order, cfg),
        }
        clauses = [c for c in snapshot.clauses.values() if c.clause_id in scope or _touches(c, scope)]
        for clause in tqdm(clauses, desc="template pairs", unit="clause", disable=None, leave=False):
            for qtype, build in builders.items():
                if qtype not in cfg.types:
                    continue
                if clause.clause_id not in scope and qtype not in ("comparison", "cross_reference"):
                    continue
                drafts, rejected = build(clause)
                if clause.clause_id not in scope:  # reached through a changed neighbour / target
                    drafts = [d for d in drafts if scope & set(d.gold)]
                    rejected = [r for r in rejected if scope & set(r.clause_ids)]
                emit(drafts, rejected, f"{qtype}:{clause.clause_id}")
        if "table" in cfg.types:
            for table in snapshot.tables:
                if table.clause_id is not None and table.clause_id not in scope:
                    continue
                if table.clause_id is None and clause_ids is not None:
                    continue
                drafts, rejected = self._tables(table, snapshot)
                emit(drafts, rejected, f"table:{table.table_id}")
        if "unanswerable" in cfg.types and clause_ids is None:
            answerable = sum(1 for p in pairs if p.answerable)
            pairs_u, rejected_u = self._unanswerable(snapshot, answerable, seen_questions)
            pairs += pairs_u
            rejections += rejected_u
        log.info(
            "datagen.templates",
            pairs=len(pairs),
            rejected=len(rejections),
            clauses=len(scope),
            cot=sum(1 for p in pairs if p.cot),
        )
        return pairs, rejections

    # -- one pair -------------------------------------------------------------------------------
    def _pick(
        self, rng: random.Random, qtype: str, variant: str | None, available: set[str] | None = None
    ) -> tuple[Any, str] | None:
        """A template for the candidate: style, length and difficulty drawn from the mixes, relaxed
        in that order when no template fits; templates needing a slot the candidate lacks are out."""
        cfg = self.config
        style = _weighted(rng, cfg.style_mix, STYLES)
        length = "long" if rng.random() < cfg.long_ratio else "short"
        difficulty = _weighted(rng, cfg.difficulty_mix, self.bank.difficulties(qtype))
        attempts = (
            {"style": style, "difficulty": difficulty, "length": length},
            {"style": style, "difficulty": difficulty},
            {"style": style},
            {},
        )
        for facets in attempts:
            candidates = self.bank.select(qtype, variant=variant, **facets)
            if available is not None:
                candidates = [t for t in candidates if t.slots <= available]
            specific = [t for t in candidates if t.variant is not None]
            if candidates:
                pool = specific if specific and rng.random() < 0.5 else candidates
                template = rng.choice(pool)
                return template, difficulty if difficulty in template.difficulty else template.difficulty[0]
        return None

    def _finish(self, draft: _Draft, snapshot: GraphSnapshot, rng: random.Random) -> QAPair | Rejection:
        cfg = self.config
        picked = self._pick(rng, draft.qtype, draft.variant, {k for k, v in draft.slots.items() if v})
        if picked is None:
            filled = sorted(k for k, v in draft.slots.items() if v)
            detail = f"no template for variant {draft.variant} with slots {filled}"
            return Rejection("no_template", draft.qtype, draft.gold, detail)
        template, difficulty = picked
        question = _tidy_question(template.render(draft.slots))
        answer = cite(draft.pieces)
        if len(answer) > cfg.max_answer_chars and draft.short_pieces:
            answer = cite(draft.short_pieces)
        if len(answer) > cfg.max_answer_chars:
            return Rejection("answer_too_long", draft.qtype, draft.gold, f"{len(answer)} characters", question)
        cot = rng.random() < cfg.cot_ratio
        if cot:
            answer = self._cot(draft, snapshot, answer)
        gold = {cid: snapshot.clauses[cid].version for cid in draft.gold}
        extra = {"length": template.length, **draft.extra}
        if draft.variant:
            extra["variant"] = draft.variant
        return QAPair(
            pair_id=pair_id(draft.qtype, template.id, gold, question),
            question=question,
            answer=answer,
            qtype=draft.qtype,
            difficulty=difficulty,
            style=template.style,
            gold=gold,
            context_ids=self._context(draft.gold, snapshot, rng),
            template_id=template.id,
            cot=cot,
            extra=extra,
        )

    def _cot(self, draft: _Draft, snapshot: GraphSnapshot, answer: str) -> str:
        """分析 (which clauses apply) / 依据 (their key sentences) / 结论 (the answer), all cited."""
        gold = [snapshot.clauses[cid] for cid in draft.gold]
        first = gold[0]
        labels = [f"《{_bare(first.doc_title)}》{clause_label(first)}"]
        labels += [clause_label(c, first.doc_id) for c in gold[1:]]
        markers = "".join(format_marker(c.clause_id) for c in gold)
        analysis = f"分析：本问题涉及{'和'.join(labels)}{markers}。"
        return "\n".join([analysis, "依据：" + cite(draft.key_pieces), "结论：" + answer])

    def _context(self, gold: list[str], snapshot: GraphSnapshot, rng: random.Random) -> list[str]:
        """Gold first, then distractors: neighbours, then the same document, then anywhere."""
        wanted = self.config.distractors
        chosen: list[str] = []
        taken = set(gold)
        neighbours = [n for g in gold for n in snapshot.clauses[g].neighbours if n in snapshot.clauses]
        same_doc = [c.clause_id for c in snapshot.clauses.values() if c.doc_id == snapshot.clauses[gold[0]].doc_id]
        for pool in (neighbours, same_doc, list(snapshot.clauses)):
            pool = [c for c in dict.fromkeys(pool) if c not in taken]
            rng.shuffle(pool)
            for cid in pool[: wanted - len(chosen)]:
                chosen.append(cid)
                taken.add(cid)
            if len(chosen) >= wanted:
                break
        return [*gold, *chosen]

    # -- tables ---------------------------------------------------------------------------------
    def _tables(self, table: SourceTable, snapshot: GraphSnapshot) -> tuple[list[_Draft], list[Rejection]]:
        ids = [table.clause_id] if table.clause_id else []
        if table.clause_id is None or table.clause_id not in snapshot.clauses:
            detail = f"{table.table_id} ({table.caption or '/'.join(table.section_path)}) has no clause to cite"
            return [], [Rejection("table_without_clause", "table", ids, detail)]
        keys = _row_keys(table)
        if not keys:
            return [], [Rejection("table_without_rows", "table", ids, f"{table.table_id} has no usable rows")]
        rng = random.Random(f"{self.config.seed}:table-rows:{table.table_id}")
        if len(keys) > self.config.table_rows:
            keys = sorted(rng.sample(keys, self.config.table_rows))
        clause = snapshot.clauses[table.clause_id]
        topic = table.caption or (f"{section_title(clause)}表" if table.header else section_title(clause))
        topic = _SECTION_NUMBER.sub("", topic).strip() or topic
        table_text = render_table(table)
        drafts = []
        for index, key in keys:
            row = table.rows[index]
            key_width = len(key.split("、"))
            columns = [h for h, v in zip(table.header, row, strict=False) if v][key_width:] if table.header else []
            column = rng.choice(columns) if columns else "具体规定"
            line = _row_line(table, row)
            slots = {"doc": _bare(clause.doc_title), "topic": _bare(topic), "row_key": key, "column": column}
            pieces = [(line, clause.clause_id)]
            extra = {"table_id": table.table_id, "row": index, "table_text": table_text}
            drafts.append(_Draft("table", [clause.clause_id], slots, pieces, pieces, extra=extra))
        return drafts, []

    # -- unanswerable ---------------------------------------------------------------------------
    def _unanswerable(
        self, snapshot: GraphSnapshot, answerable: int, seen: set[str]
    ) -> tuple[list[QAPair], list[Rejection]]:
        cfg = self.config
        haystack = graph_text(snapshot)
        rejections: list[Rejection] = []
        topics = []
        for topic in self.bank.out_of_scope:
            hits = [k for k in topic.keywords if k in haystack]
            if hits:
                rejections.append(Rejection("topic_in_graph", "unanswerable", [], f"{topic.topic}: {hits}", ""))
            else:
                topics.append(topic.topic)
        count = cfg.unanswerable_count
        if count is None:
            count = max(cfg.unanswerable_min, round(cfg.unanswerable_ratio * answerable))
        rng = random.Random(f"{cfg.seed}:unanswerable")
        rng.shuffle(topics)
        all_ids = list(snapshot.clauses)
        pairs: list[QAPair] = []
        attempts = 0
        while topics and all_ids and len(pairs) < count and attempts < count * 6:
            topic = topics[attempts % len(topics)]
            attempts += 1
            picked = self._pick(rng, "unanswerable", None)
            if picked is None:
                break
            template, difficulty = picked
            question = _tidy_question(template.render({"topic": topic}))
            if question in seen:
                continue
            seen.add(question)
            context = rng.sample(all_ids, min(len(all_ids), cfg.distractors + 1))
            pairs.append(
                QAPair(
                    pair_id=pair_id("unanswerable", template.id, [], question),
                    question=question,
                    answer=REFUSAL_ANSWER,
                    qtype="unanswerable",
                    difficulty=difficulty,
                    style=template.style,
                    gold={},
                    context_ids=context,
                    template_id=template.id,
                    extra={"length": template.length, "topic": topic},
                )
            )
        return pairs, rejections


def graph_text(snapshot: GraphSnapshot) -> str:
    """All text of the snapshot (clauses, tables, titles, headings), for out-of-scope checks."""
    parts = [c.text for c in snapshot.clauses.values()]
    parts += [render_table(t) for t in snapshot.tables]
    parts += [o.title + "\n" + "\n".join(o.sections) for o in snapshot.outlines.values()]
    return "\n".join(parts)


def _touches(clause: SourceClause, scope: set[str]) -> bool:
    return bool(scope & set(clause.neighbours)) or bool(scope & set(clause.refers_to))


def _tidy_question(text: str) -> str:
    text = re.sub(r"的{2,}", "的", text)
    text = re.sub(r"([，,。？])\1+", r"\1", text)
    return text.replace("，？", "？").strip()


__all__ = [
    "TemplateGenConfig",
    "TemplateGenerator",
    "body_sentences",
    "cite",
    "clause_label",
    "graph_text",
    "pair_id",
    "section_title",
]
