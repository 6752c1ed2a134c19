"""The prompt every generative backend answers from, and that dataset generation trains on.

One template, used verbatim at training and at serving time: a model fine-tuned on prompts built
here sees the same layout when it serves. It lives in ``kg`` because it is the graph's contract
with a model, not a part of either user: it shows clauses with their citation markers
(:mod:`kg.citations`) and asks for the refusal text of the verifier (:mod:`kg.verifier`) that
then checks the answer. ``training`` and ``serving`` both import it from here and neither
imports the other. The prompt is a pure function of its inputs (no dates,
no randomness), so the same question and clauses always give the same messages, byte for byte.

Layout: a system message with the rules and the numbered clauses (each shown with its citation
marker, document title, section path and text), then the question as the user message. The rules
ask for the ``[[CLAUSE_ID]]`` marker of :mod:`kg.citations` after every sentence, numbers copied
as the clause writes them (the verifier compares them), and the exact refusal text when the
clauses do not answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kg.citations import format_marker
from kg.verifier import REFUSAL_TEXT

#: The whole answer when the clauses do not answer the question (the verifier's refusal, as a
#: sentence). :func:`kg.verifier.is_refusal` recognises it.
REFUSAL_ANSWER = f"{REFUSAL_TEXT}。"

# A made-up id, so the example cannot be mistaken for one of the clauses given.
_EXAMPLE_ID = "示例制度/第五条"

SYSTEM_PROMPT = (
    "你是企业财务制度与法规问答助手。只能依据下面给出的条款回答用户的问题，"
    "不得使用条款以外的知识，不得推测。\n"
    "回答规则：\n"
    "1. 每一句话的句末标点之前，写上支持这句话的条款的标记，格式为 [[条款编号]]（即下面每个条款的“标记”），"
    f"例如：差旅费报销须经部门负责人审批{format_marker(_EXAMPLE_ID)}。\n"
    "2. 只使用下面列出的条款编号，不得编造编号。\n"
    "3. 金额、比例、期限、日期、条款号等数字必须与条款原文完全一致，照原样抄写，不得换算或改写。\n"
    f"4. 如果这些条款不能回答问题，只回复：{REFUSAL_ANSWER}"
)

CONTEXT_HEADER = "可依据的条款："
NO_CONTEXT_TEXT = "（无）"


class PromptContext(Protocol):
    """What a clause must offer to be shown in a prompt.

    ``serving.types.RetrievedClause`` satisfies it; dataset generation may pass its own
    clause objects or :class:`ContextClause`.
    """

    clause_id: str
    doc_title: str
    number: str
    section_path: Sequence[str]
    text: str


@dataclass(frozen=True)
class ContextClause:
    """A clause built by hand (dataset generation, tests) for :func:`build_messages`."""

    clause_id: str
    doc_title: str
    number: str
    text: str
    section_path: Sequence[str] = field(default_factory=tuple)


def render_context(clause: PromptContext, index: int = 1) -> str:
    """One clause as the model sees it.

    Example::

        【条款1】标记：[[CAS-1-存货/第五条]]
        出处：《企业会计准则第1号——存货（2006）》 第三章 计量 第五条
        内容：存货应当按照成本进行初始计量。……

    Args:
        clause: the clause.
        index: its 1-based position in the prompt.
    """
    where = " ".join(p for p in [*clause.section_path, clause.number] if p)
    source = f"《{clause.doc_title}》" + (f" {where}" if where else "")
    return (
        f"【条款{index}】标记：{format_marker(clause.clause_id)}\n出处：{source}\n内容：{clause.text.strip()}"
    )


def render_contexts(contexts: Sequence[PromptContext]) -> str:
    """All clauses, numbered in the given (rank) order and separated by blank lines."""
    if not contexts:
        return f"{CONTEXT_HEADER}\n{NO_CONTEXT_TEXT}"
    body = "\n\n".join(render_context(c, i) for i, c in enumerate(contexts, start=1))
    return f"{CONTEXT_HEADER}\n\n{body}"


def build_system_prompt(contexts: Sequence[PromptContext], *, rules: str = SYSTEM_PROMPT) -> str:
    """The system message: the rules, then the clauses."""
    return f"{rules}\n\n{render_contexts(contexts)}"


def build_messages(
    question: str, contexts: Sequence[PromptContext], *, rules: str = SYSTEM_PROMPT
) -> list[dict[str, str]]:
    """The chat messages for one question: a system message with rules and clauses, the question.

    Args:
        question: the user's question (used as given, stripped).
        contexts: the clauses to answer from, best first.
        rules: the instructions before the clauses (the default is what models are trained on).

    Returns:
        ``[{"role": "system", ...}, {"role": "user", ...}]`` in OpenAI's chat format.
    """
    return [
        {"role": "system", "content": build_system_prompt(contexts, rules=rules)},
        {"role": "user", "content": question.strip()},
    ]


__all__ = [
    "CONTEXT_HEADER",
    "REFUSAL_ANSWER",
    "SYSTEM_PROMPT",
    "ContextClause",
    "PromptContext",
    "build_messages",
    "build_system_prompt",
    "render_context",
    "render_contexts",
]
