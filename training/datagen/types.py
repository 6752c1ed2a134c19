"""The typed hand-offs of dataset generation: what the graph gives, what generators make.

Every pair knows the clause versions it teaches (``gold``) and the graph version it was built
from, so a changed clause can have exactly its pairs regenerated and every answer can be checked
by the ``kg`` verifier against the clauses it cites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

QuestionType = Literal[
    "definition",
    "fact",
    "obligation",
    "condition",
    "procedure",
    "cross_reference",
    "comparison",
    "table",
    "unanswerable",
]
QUESTION_TYPES: tuple[str, ...] = get_args(QuestionType)
Difficulty = Literal["基础", "进阶", "综合"]
DIFFICULTIES: tuple[str, ...] = get_args(Difficulty)
Style = Literal["formal", "everyday"]
STYLES: tuple[str, ...] = get_args(Style)
#: How a question was varied from the one its generator wrote.
Augmentation = Literal["none", "punct", "paraphrase"]
#: Where a scored pair goes: SFT (high quality), the GRPO prompt set (middle band), dropped.
Band = Literal["sft", "grpo", "drop"]
Split = Literal["train", "val", "test_unseen", "test_paraphrase"]


@dataclass(frozen=True)
class SourceTriple:
    """A fact of a clause version as the graph stores it (``object`` normalized where possible)."""

    subject: str
    predicate: str
    object: str
    qualifiers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceClause:
    """One active clause version with the context a generator needs.

    ``refers_to`` holds the active clause ids this clause references (REFERS_TO edges);
    ``items`` the enumerated items (（一）…, 1. …) in order, the steps or conditions of the clause;
    ``neighbours`` the ids of the previous/next clauses of the same section (comparison partners,
    distractors).
    """

    clause_id: str
    version: int
    doc_id: str
    doc_title: str
    number: str
    text: str
    section_path: tuple[str, ...] = ()
    page_start: int = 1
    page_end: int = 1
    triples: tuple[SourceTriple, ...] = ()
    refers_to: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    neighbours: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourceTable:
    """A Table node with the clause it is cited through.

    Tables are not clauses, so an answer about a table row cites ``clause_id``: the active clause
    of the table's section that precedes it (or the section's first clause). Its text, with the
    table rendered after it, is what such an answer is verified against.
    """

    table_id: str
    doc_id: str
    doc_title: str
    section_path: tuple[str, ...]
    caption: str | None
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    page: int
    clause_id: str | None


@dataclass(frozen=True)
class DocumentOutline:
    """A document's title and section headings in order: the context a chunk loses."""

    doc_id: str
    title: str
    sections: tuple[str, ...]


@dataclass(frozen=True)
class GraphSnapshot:
    """Everything dataset generation reads from the graph, read once at one graph version."""

    graph_version: int
    clauses: dict[str, SourceClause]
    tables: tuple[SourceTable, ...]
    outlines: dict[str, DocumentOutline]
    #: ids of clauses added/updated/retired after ``--since`` (None: a full build).
    changed_since: frozenset[str] | None = None


@dataclass
class QAPair:
    """One question-answer pair with its provenance and, once scored, its quality verdict.

    Attributes:
        pair_id: stable id (hash of type, template, gold ids and question), so a rebuild with the
            same seed and graph gives the same ids.
        question: the question as the user would ask it.
        answer: the reference answer, with ``[[CLAUSE_ID]]`` markers after each sentence
            (or exactly ``kg.prompting.REFUSAL_ANSWER`` for unanswerable questions).
        qtype, difficulty, style: what the pair is.
        gold: clause id -> version of the clauses the answer is written from (empty when
            unanswerable).
        context_ids: the clause ids shown in the prompt, gold first then distractors (the order
            the prompt shows them in is decided at export).
        template_id: the template (or ``llm:<prompt-kind>``) that wrote the question.
        generator: ``template`` or ``llm:<model>``.
        augmentation: ``none``, ``punct`` or ``paraphrase``; ``parent_id`` names the original.
        cot: the answer is in the 分析 / 依据 / 结论 layout.
        scores: quality scores by name (verified, similarity, length_ok, duplicate_of, ...).
        band: ``sft``, ``grpo`` or ``drop``; ``reject_reason`` says why when dropped.
        split: the split the pair landed in.
        extra: generator-specific details (the table row, the triple used, the reference path).
    """

    pair_id: str
    question: str
    answer: str
    qtype: str
    difficulty: str
    style: str
    gold: dict[str, int]
    context_ids: list[str]
    template_id: str
    generator: str = "template"
    augmentation: str = "none"
    parent_id: str | None = None
    cot: bool = False
    scores: dict[str, Any] = field(default_factory=dict)
    band: str | None = None
    reject_reason: str | None = None
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def answerable(self) -> bool:
        return self.qtype != "unanswerable"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pair_id": self.pair_id,
            "question": self.question,
            "answer": self.answer,
            "qtype": self.qtype,
            "difficulty": self.difficulty,
            "style": self.style,
            "gold": dict(self.gold),
            "context_ids": list(self.context_ids),
            "template_id": self.template_id,
            "generator": self.generator,
            "augmentation": self.augmentation,
            "parent_id": self.parent_id,
            "cot": self.cot,
            "scores": dict(self.scores),
            "band": self.band,
            "reject_reason": self.reject_reason,
            "split": self.split,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QAPair:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Rejection:
    """A candidate that never became a pair, with the reason counted in the report."""

    reason: str
    qtype: str
    clause_ids: list[str]
    detail: str = ""
    question: str = ""
