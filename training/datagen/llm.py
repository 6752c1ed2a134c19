"""QA pairs written by an LLM from the clauses, an optional LLM judge, and LLM paraphrases.

Templates give exact, verifiable pairs but few phrasings; an LLM writes the questions people
actually ask. Its answers are untrusted like any model output: this module only asks and parses
(the prompt binds the answer to the clauses, with ``[[CLAUSE_ID]]`` markers and numbers copied
verbatim); the quality stage verifies every answer with the ``kg`` verifier and the runner calls
:meth:`LlmGenerator.regenerate` for the ones that fail.

The prompt shows each clause with its document title and section path and the document outline
(section headings): the context a clause loses when a long manual is cut into pieces, without
which a model writes questions like "本条规定了什么？" that no user would ask.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from kg.citations import format_marker
from kg.prompting import REFUSAL_ANSWER, ContextClause, render_context
from training.datagen.context import build_contexts
from training.datagen.llm_client import (
    ChatClient,
    ChatRequest,
    Completion,
    LlmEndpointConfigError,
    LlmError,
    LlmUnavailable,
    Message,
)
from training.datagen.types import DocumentOutline, GraphSnapshot, QAPair, Rejection, SourceClause

log = structlog.get_logger(__name__)

#: Most characters of document outline shown in a generation prompt.
OUTLINE_MAX_CHARS = 800
#: Neighbouring clauses added to a pair's context as distractors.
MAX_DISTRACTORS = 2
# A made-up id for the format example, so it cannot be mistaken for a real clause.
_EXAMPLE_ID = "示例制度/第五条"

_QTYPE_TASKS: dict[str, tuple[str, str]] = {
    "definition": ("定义类", "问条款中定义的某个术语或概念是什么（例如“什么是……？”“……指的是什么？”）。"),
    "fact": ("事实类", "问条款中的一个具体事实：金额、比例、期限、数量、门槛或日期。"),
    "obligation": ("义务类", "问谁应当、必须、不得或可以做什么。"),
    "condition": ("条件类", "问需要满足哪些条件（全部条件）才能怎样，或在什么情形下适用。"),
    "procedure": ("流程类", "问办理某事的步骤及其先后顺序。"),
    "cross_reference": (
        "跨条款类",
        "问题必须同时用到第一个条款和它引用的条款才能完整回答（沿着引用关系推理）。",
    ),
    "comparison": ("比较类", "比较这些条款规定的异同（例如适用范围、要求、数额或期限的区别）。"),
    "table": ("表格查询类", "根据条款所附表格中的某一行提问（例如某金额由谁审批、某情形适用哪个期限）。"),
    "unanswerable": (
        "无法回答类",
        "问一个与这些条款主题相关、员工可能会问、但这些条款以及整份文档都没有规定的问题。",
    ),
}
_DIFFICULTY_HINTS: dict[str, str] = {
    "基础": "直接问条款中明确写出的一个要点。",
    "进阶": "需要理解条款的含义、适用条件或例外才能回答。",
    "综合": "需要综合条款中的多个要点（或多个条款）才能完整回答。",
}
_STYLE_HINTS: dict[str, str] = {
    "formal": "用规范的书面语提问。",
    "everyday": "用公司员工日常口语的问法提问（例如“我们……的话，要……吗？”），不要照抄条款原文的措辞。",
}

GENERATION_SYSTEM = (
    "你是企业财务制度与法规培训题库的出题人。你根据给出的条款出一道题并写出标准答案，"
    "答案只能依据给出的条款。只输出一个 JSON 对象，不要输出任何其他文字。"
)


@dataclass(frozen=True)
class LlmTarget:
    """One prompt to send: which clauses, which kind of question.

    ``table_text`` (table questions) is shown after the first clause and kept in the pair's
    ``extra["table_text"]`` so export and scoring show the same text; ``shown_text`` replaces the
    text of some clauses in the prompt only (e.g. punctuation-stripped augmentation).
    """

    qtype: str
    clause_ids: tuple[str, ...]
    difficulty: str = "基础"
    style: str = "formal"
    cot: bool = False
    table_text: str | None = None
    shown_text: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "qtype": self.qtype,
            "clause_ids": list(self.clause_ids),
            "difficulty": self.difficulty,
            "style": self.style,
            "cot": self.cot,
            "table_text": self.table_text,
            "shown_text": dict(self.shown_text) if self.shown_text else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LlmTarget:
        return cls(
            qtype=data["qtype"],
            clause_ids=tuple(data["clause_ids"]),
            difficulty=data.get("difficulty", "基础"),
            style=data.get("style", "formal"),
            cot=bool(data.get("cot", False)),
            table_text=data.get("table_text"),
            shown_text=data.get("shown_text"),
        )


# ---------------------------------------------------------------------------------------------
# Prompt


def outline_text(outline: DocumentOutline, focus: Sequence[str] = (), max_chars: int = OUTLINE_MAX_CHARS) -> str:
    """The document's headings, one per line, cut to ``max_chars`` around the ``focus`` headings.

    Long manuals have hundreds of headings; the ones nearest the clause's own section say most
    about it, so when the outline must be cut those are kept and gaps are marked ``……``.
    """
    sections = [s for s in outline.sections if s.strip()]
    if sum(len(s) + 3 for s in sections) <= max_chars:
        return "\n".join(f"- {s}" for s in sections)
    anchors = [i for i, s in enumerate(sections) if s in set(focus)] or [0]
    order = sorted(range(len(sections)), key=lambda i: (min(abs(i - a) for a in anchors), i))
    kept: set[int] = set()
    used = 0
    for i in order:
        if used + len(sections[i]) + 3 > max_chars:
            break
        kept.add(i)
        used += len(sections[i]) + 3
    lines: list[str] = []
    previous = -1
    for i in sorted(kept):
        if i != previous + 1:
            lines.append("- ……")
        lines.append(f"- {sections[i]}")
        previous = i
    if previous != len(sections) - 1:
        lines.append(f"- ……（共 {len(sections)} 个标题，其余从略）")
    return "\n".join(lines)


def generation_messages(
    qtype: str,
    clauses: Sequence[SourceClause],
    outline: DocumentOutline,
    *,
    difficulty: str,
    style: str,
    cot: bool,
    shown_text: Mapping[str, str] | None = None,
) -> list[Message]:
    """The chat messages asking for one question of ``qtype`` and its answer from ``clauses``.

    Args:
        qtype: a :data:`training.datagen.types.QUESTION_TYPES` value.
        clauses: the clauses to ask about (for cross-references the path, for comparisons the
            pair), shown in this order with their citation markers.
        outline: the outline of the (first) clause's document.
        difficulty: 基础, 进阶 or 综合.
        style: ``formal`` or ``everyday``.
        cot: the answer is to be laid out as 分析 / 依据 / 结论.
        shown_text: clause id -> the text to show instead of the clause's own.

    Returns:
        ``[system, user]`` messages; the model is asked for ``{"question": ..., "answer": ...}``.
    """
    name, task = _QTYPE_TASKS.get(qtype, (qtype, "问一个这些条款能够回答的问题。"))
    shown = dict(shown_text or {})
    rendered = "\n\n".join(
        render_context(
            ContextClause(
                clause_id=c.clause_id,
                doc_title=c.doc_title,
                number=c.number,
                text=shown.get(c.clause_id, c.text),
                section_path=tuple(c.section_path),
            ),
            i,
        )
        for i, c in enumerate(clauses, start=1)
    )
    focus = [p for c in clauses for p in c.section_path]
    outline_block = outline_text(outline, focus) or "（无章节标题）"
    example = f"差旅费报销须经部门负责人审批{format_marker(_EXAMPLE_ID)}。"
    if qtype == "unanswerable":
        answer_rules = f"答案固定为：{REFUSAL_ANSWER}"
    else:
        rules = [
            "只依据上面的条款作答，不得加入条款以外的知识，不得推测；每句话尽量沿用条款原文的措辞"
            "（答案会逐句与条款原文核对）。",
            f"每一句话的句末标点之前写上支持这句话的条款标记，格式为 [[条款编号]]，例如：{example}",
            "只使用上面给出的条款标记，不得编造编号。",
            "金额、比例、期限、日期、条款号等数字照条款原文抄写，不得换算或改写。",
        ]
        if cot:
            rules.append(
                "答案分三段，依次以“分析：”“依据：”“结论：”开头：分析指出问题涉及条款中的哪些规定，"
                "依据摘录条款原文要点，结论直接回答问题；每段的每一句话都要有条款原文支持并带条款标记，"
                "不要写“问题问的是……”这类条款里没有的话。"
            )
        answer_rules = "\n".join(f"{i}. {r}" for i, r in enumerate(rules, start=1))
    user = (
        f"文档：《{outline.title}》\n文档目录：\n{outline_block}\n\n"
        f"可依据的条款：\n\n{rendered}\n\n"
        f"任务：出一道{name}题。\n"
        f"题型要求：{task}\n"
        f"难度（{difficulty}）：{_DIFFICULTY_HINTS.get(difficulty, '')}\n"
        f"问法：{_STYLE_HINTS.get(style, '')}\n"
        "问题要求：只问一个问题；问题要像员工真正会问的那样独立成句，"
        "不要出现“上述条款”“本条”或条款标记。\n"
        f"答案要求：\n{answer_rules}\n\n"
        '输出格式（只输出这个 JSON 对象）：{"question": "问题", "answer": "答案"}'
    )
    return [{"role": "system", "content": GENERATION_SYSTEM}, {"role": "user", "content": user}]


# ---------------------------------------------------------------------------------------------
# Parsing model output

_FENCE_RE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)
_QA_RE = re.compile(r"(?:问题|question|Q)\s*[:：]\s*(.+?)\s*(?:答案|回答|answer|A)\s*[:：]\s*(.+)", re.S | re.I)


def _json_objects(text: str) -> list[Any]:
    """Every JSON value that starts at a ``{`` or ``[`` in ``text`` (raw newlines in strings allowed)."""
    decoder = json.JSONDecoder(strict=False)
    found: list[Any] = []
    i = 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                i += 1
                continue
            found.append(value)
            i = end
        else:
            i += 1
    return found


def _candidates(text: str) -> list[str]:
    """The fenced blocks of a reply first, then the whole reply."""
    return [m.group(1) for m in _FENCE_RE.finditer(text)] + [text]


def parse_generation(text: str) -> tuple[str, str] | None:
    """``(question, answer)`` from a model reply, or None when there is none.

    Accepts a JSON object (in a code fence or after chatter; keys ``question``/``answer`` or
    ``问题``/``答案``), else ``问题：…`` ``答案：…`` lines. Both parts must be non-empty.
    """
    for chunk in _candidates(text):
        for value in _json_objects(chunk):
            if isinstance(value, dict):
                q = value.get("question", value.get("问题"))
                a = value.get("answer", value.get("答案"))
                if isinstance(q, str) and isinstance(a, str) and q.strip() and a.strip():
                    return q.strip(), a.strip()
    match = _QA_RE.search(text)
    if match:
        question, answer = match.group(1).strip().strip('"'), match.group(2).strip().strip('"')
        if question and answer:
            return question, answer
    return None


_SCORE_RE = re.compile(r"(?:score|评分|得分|分数)\"?\s*[:：=]\s*\"?([1-5](?:\.\d+)?)", re.I)


def parse_judgement(text: str) -> tuple[float, str] | None:
    """``(score, reason)`` with score in 1..5 from a judge reply, or None when it has none."""
    for chunk in _candidates(text):
        for value in _json_objects(chunk):
            if isinstance(value, dict) and "score" in value:
                try:
                    score = float(value["score"])
                except (TypeError, ValueError):
                    continue
                if 1.0 <= score <= 5.0:
                    return score, str(value.get("reason", "")).strip()
    match = _SCORE_RE.search(text)
    if match:
        return float(match.group(1)), text.strip()[:200]
    return None


_NUMBERING_RE = re.compile(r"^\s*(?:[-*•]|\d+[.、)）]|（\d+）|\(\d+\))\s*")
_PUNCT_RE = re.compile(r"[\s\W_]+", re.U)


def parse_paraphrases(text: str, original: str, n: int) -> list[str]:
    """Up to ``n`` distinct rephrasings from a reply (a JSON array, or one per line), original excluded."""
    items: list[str] = []
    for chunk in _candidates(text):
        for value in _json_objects(chunk):
            if isinstance(value, list):
                items = [v for v in value if isinstance(v, str)]
                break
            if isinstance(value, dict) and isinstance(value.get("paraphrases"), list):
                items = [v for v in value["paraphrases"] if isinstance(v, str)]
                break
        if items:
            break
    if not items:  # one per line: only numbered/bulleted lines or lines that end as a question
        items = [
            _NUMBERING_RE.sub("", line)
            for line in text.splitlines()
            if _NUMBERING_RE.match(line) or line.rstrip().endswith(("？", "?"))
        ]
    seen = {_PUNCT_RE.sub("", original)}
    out: list[str] = []
    for item in items:
        item = item.strip().strip('"“”')
        key = _PUNCT_RE.sub("", item)
        if len(key) < 4 or key in seen or item.startswith(("[", "{", "```")):
            continue
        seen.add(key)
        out.append(item)
        if len(out) == n:
            break
    return out


# ---------------------------------------------------------------------------------------------
# Generator


def pair_id(qtype: str, clause_ids: Sequence[str], question: str, sample: int) -> str:
    """Stable id of an LLM pair: the same prompt, sample and question give the same id."""
    material = json.dumps([qtype, list(clause_ids), question, sample], ensure_ascii=False)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()[:16]


class LlmGenerator:
    """Writes candidate QA pairs with an LLM; verification is the quality stage's job.

    Args:
        client: the chat client (its config gives the model name and ``n_samples``).
    """

    def __init__(self, client: ChatClient) -> None:
        self.client = client

    @property
    def generator(self) -> str:
        return f"llm:{self.client.model}"

    def messages_for(self, target: LlmTarget, snapshot: GraphSnapshot) -> list[Message] | None:
        """The prompt of a target, or None when one of its clauses is not in the snapshot."""
        clauses = [snapshot.clauses.get(cid) for cid in target.clause_ids]
        if not clauses or any(c is None for c in clauses):
            return None
        present = [c for c in clauses if c is not None]
        first = present[0]
        outline = snapshot.outlines.get(first.doc_id) or DocumentOutline(first.doc_id, first.doc_title, ())
        shown = dict(target.shown_text or {})
        if target.table_text:
            shown[first.clause_id] = f"{shown.get(first.clause_id, first.text)}\n{target.table_text}"
        return generation_messages(
            target.qtype,
            present,
            outline,
            difficulty=target.difficulty,
            style=target.style,
            cot=target.cot,
            shown_text=shown,
        )

    def generate(
        self, snapshot: GraphSnapshot, targets: Sequence[LlmTarget]
    ) -> tuple[list[QAPair], list[Rejection]]:
        """``n_samples`` candidates per target, as pairs or rejections (``llm_unparseable``, ``llm_error``).

        Raises:
            LlmUnavailable, LlmEndpointConfigError: the endpoint is down or refuses us; the cache
                keeps what was done, so the build resumes where it stopped.
        """
        rejections: list[Rejection] = []
        requests: list[ChatRequest] = []
        slots: list[tuple[LlmTarget, int]] = []
        for target in targets:
            messages = self.messages_for(target, snapshot)
            if messages is None:
                missing = [c for c in target.clause_ids if c not in snapshot.clauses]
                rejections.append(
                    Rejection("llm_missing_clause", target.qtype, list(target.clause_ids), f"not in snapshot: {missing}")
                )
                continue
            for sample in range(self.client.config.n_samples):
                requests.append(ChatRequest(messages, sample))
                slots.append((target, sample))
        results = self.client.complete_many(requests, desc="llm questions")
        pairs: list[QAPair] = []
        for (target, sample), result in zip(slots, results, strict=True):
            made = self._to_pair(target, sample, result, snapshot)
            (pairs if isinstance(made, QAPair) else rejections).append(made)  # type: ignore[arg-type]
        log.info(
            "llm.generated",
            targets=len(targets),
            pairs=len(pairs),
            rejected=len(rejections),
            model=self.client.model,
            usage=self.client.usage.to_dict(),
        )
        return pairs, rejections

    def regenerate(self, pair: QAPair, snapshot: GraphSnapshot, attempt: int) -> QAPair | None:
        """Ask again for a pair that failed quality checks: another sample, so another cache key.

        ``attempt`` counts from 1; sample ``s`` of ``n`` becomes ``s + attempt * n``, which never
        collides with an earlier attempt or sample. None when the pair is not an LLM pair, a clause
        is gone, the request failed or the reply could not be parsed.
        """
        info = pair.extra.get("llm")
        if not isinstance(info, dict) or "target" not in info:
            return None
        target = LlmTarget.from_dict(info["target"])
        messages = self.messages_for(target, snapshot)
        if messages is None:
            return None
        sample = int(info.get("sample", 0)) % self.client.config.n_samples + attempt * self.client.config.n_samples
        try:
            result: Completion | LlmError = self.client.complete(messages, sample)
        except (LlmUnavailable, LlmEndpointConfigError):
            raise
        except LlmError as exc:
            result = exc
        made = self._to_pair(target, sample, result, snapshot)
        if not isinstance(made, QAPair):
            log.info("llm.regenerate_failed", pair_id=pair.pair_id, attempt=attempt, reason=made.reason)
            return None
        made.extra["llm"]["attempt"] = attempt
        made.extra["llm"]["regenerated_from"] = pair.pair_id
        return made

    def _to_pair(
        self, target: LlmTarget, sample: int, result: Completion | LlmError, snapshot: GraphSnapshot
    ) -> QAPair | Rejection:
        ids = list(target.clause_ids)
        if isinstance(result, LlmError):
            return Rejection("llm_error", target.qtype, ids, str(result))
        parsed = parse_generation(result.text)
        if parsed is None:
            return Rejection("llm_unparseable", target.qtype, ids, result.text[:300])
        question, answer = parsed
        answerable = target.qtype != "unanswerable"
        if not answerable:
            answer = REFUSAL_ANSWER
        gold = {cid: snapshot.clauses[cid].version for cid in ids} if answerable else {}
        context_ids = list(dict.fromkeys(ids))
        distractors = [
            n
            for cid in ids
            for n in snapshot.clauses[cid].neighbours
            if n in snapshot.clauses and n not in context_ids
        ]
        context_ids += list(dict.fromkeys(distractors))[:MAX_DISTRACTORS]
        extra: dict[str, Any] = {
            "llm": {
                "target": target.to_dict(),
                "sample": sample,
                "model": self.client.model,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "cached": result.cached,
            }
        }
        if target.table_text:
            extra["table_text"] = target.table_text
        return QAPair(
            pair_id=pair_id(target.qtype, ids, question, sample),
            question=question,
            answer=answer,
            qtype=target.qtype,
            difficulty=target.difficulty,
            style=target.style,
            gold=gold,
            context_ids=context_ids,
            template_id=f"llm:{target.qtype}",
            generator=self.generator,
            cot=target.cot and answerable,
            extra=extra,
        )


# ---------------------------------------------------------------------------------------------
# Judge and paraphrases

JUDGE_SYSTEM = (
    "你是企业财务制度问答数据的质量评审员，评分严格。只输出一个 JSON 对象，不要输出任何其他文字。"
)


def judge_messages(pair: QAPair, snapshot: GraphSnapshot) -> list[Message]:
    """The prompt asking for a 1..5 score of one pair against the clauses its prompt shows."""
    contexts = build_contexts(pair, snapshot)
    rendered = "\n\n".join(render_context(c, i) for i, c in enumerate(contexts, start=1)) or "（无）"
    if pair.answerable:
        criteria = (
            "1. 问题是否清楚、像员工真正会问的问题，并且能仅凭条款回答；\n"
            "2. 答案的每一句是否都有条款支持，金额、比例、期限等数字是否与条款原文一致；\n"
            "3. 答案是否完整、直接地回答了问题，引用标记是否指向支持该句的条款。"
        )
    else:
        criteria = (
            "1. 问题是否清楚、像员工真正会问的问题；\n"
            f"2. 这些条款是否确实不能回答该问题（答案应为拒答：{REFUSAL_ANSWER}）。"
        )
    user = (
        f"条款：\n\n{rendered}\n\n问题：{pair.question}\n参考答案：{pair.answer}\n\n"
        f"评审标准：\n{criteria}\n\n"
        "按 1 到 5 打分（5 = 完全符合，1 = 不可用）。"
        '输出格式：{"score": 分数, "reason": "一句话理由"}'
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user}]


class LlmJudge:
    """Scores pairs 1..5 with an LLM (greedy, so a rebuild gives the same scores from the cache).

    A reply without a usable score gives ``(None, reason)``: the quality stage treats the judge
    as silent for that pair rather than guessing a score.
    """

    def __init__(self, client: ChatClient, *, max_tokens: int = 256) -> None:
        self.client = client
        self.max_tokens = max_tokens

    def _request(self, pair: QAPair, snapshot: GraphSnapshot) -> ChatRequest:
        return ChatRequest(
            judge_messages(pair, snapshot),
            0,
            temperature=0.0,
            max_tokens=min(self.max_tokens, self.client.config.max_tokens),
        )

    @staticmethod
    def _verdict(result: Completion | LlmError) -> tuple[float | None, str]:
        if isinstance(result, LlmError):
            return None, f"judge request failed: {result}"
        parsed = parse_judgement(result.text)
        if parsed is None:
            return None, f"judge reply has no 1-5 score: {result.text[:120]!r}"
        return parsed

    def judge(self, pair: QAPair, snapshot: GraphSnapshot) -> tuple[float | None, str]:
        """``(score 1..5, reason)``, or ``(None, why)`` when the reply has no usable score."""
        request = self._request(pair, snapshot)
        try:
            result: Completion | LlmError = self.client.complete(
                request.messages, request.sample, temperature=request.temperature, max_tokens=request.max_tokens
            )
        except (LlmUnavailable, LlmEndpointConfigError):
            raise
        except LlmError as exc:
            result = exc
        return self._verdict(result)

    def judge_many(self, pairs: Sequence[QAPair], snapshot: GraphSnapshot) -> list[tuple[float | None, str]]:
        """:meth:`judge` for many pairs, concurrently (in pair order)."""
        results = self.client.complete_many([self._request(p, snapshot) for p in pairs], desc="llm judge")
        return [self._verdict(r) for r in results]


def paraphrase_messages(question: str, n: int) -> list[Message]:
    user = (
        f"把下面的问题改写成 {n} 种不同的问法：意思和所问的内容不变，不加入新信息，"
        "数字、金额、比例、期限和专业术语照原样保留；可以换成员工日常口语的说法。\n"
        f"问题：{question}\n"
        '只输出一个 JSON 字符串数组，例如：["问法一", "问法二"]'
    )
    return [
        {"role": "system", "content": "你是中文改写助手。只输出 JSON，不要输出任何其他文字。"},
        {"role": "user", "content": user},
    ]


class LlmParaphraser:
    """New phrasings of a question (augmentation and the paraphrase test set), through the LLM."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client

    def paraphrase(self, question: str, n: int) -> list[str]:
        """Up to ``n`` rephrasings (fewer when the model gives fewer usable ones; never the original)."""
        return self.paraphrase_many([question], n)[0]

    __call__ = paraphrase

    def paraphrase_many(self, questions: Sequence[str], n: int) -> list[list[str]]:
        """:meth:`paraphrase` for many questions, concurrently; a failed request gives ``[]``."""
        results = self.client.complete_many(
            [ChatRequest(paraphrase_messages(q, n), 0) for q in questions], desc="llm paraphrases"
        )
        return [
            [] if isinstance(r, LlmError) else parse_paraphrases(r.text, q, n)
            for q, r in zip(questions, results, strict=True)
        ]


__all__ = [
    "GENERATION_SYSTEM",
    "LlmGenerator",
    "LlmJudge",
    "LlmParaphraser",
    "LlmTarget",
    "generation_messages",
    "judge_messages",
    "outline_text",
    "pair_id",
    "paraphrase_messages",
    "parse_generation",
    "parse_judgement",
    "parse_paraphrases",
]
