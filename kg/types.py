"""Typed values produced by ``kg`` (triple extraction) and returned by its readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class EntityRecord:
    """A named thing that clauses mention and triples connect (a party, a document, a concept)."""

    entity_id: str
    name: str
    type: str
    aliases: list[str] = field(default_factory=list)


@dataclass
class TripleRecord:
    """A fact stated in one clause.

    ``predicate`` is one of: 定义 (definition), 应当 / 不得 / 可以 / 必须 (obligation modality),
    条件 (a condition of a rule), 期限 (duration/deadline), 金额 (amount), 比例 (rate), 阈值
    (threshold), 责任主体 (responsible party), 引用 (cross reference). ``object`` holds the
    normalized value where one exists (``20日``, ``3%``, ``50000元``); ``qualifiers`` keeps the
    surface form and any unit or comparator.
    """

    triple_id: str
    clause_id: str
    subject: str
    predicate: str
    object: str
    qualifiers: dict[str, Any] = field(default_factory=dict)
    confidence: float = 0.8
    origin: Literal["rule", "llm"] = "rule"
    subject_entity: str | None = None
    object_entity: str | None = None


@dataclass
class ReferenceRecord:
    """A cross reference written in a clause, resolved to a clause or a document id.

    ``title_key`` is set when the target document was not in the graph at extraction time: the
    writer then links the reference to the document with ``target_id`` once it exists, or else to
    every document whose :func:`ingest.ids.normalize_title` is ``title_key`` (《企业会计准则第25号》
    names two standards; a reference without a subject cannot say which).
    """

    source_clause_id: str
    target_kind: Literal["clause", "document"]
    target_id: str
    text: str
    title_key: str | None = None


@dataclass
class Extraction:
    """Everything the triple extractor found in one document."""

    triples: list[TripleRecord] = field(default_factory=list)
    entities: list[EntityRecord] = field(default_factory=list)
    references: list[ReferenceRecord] = field(default_factory=list)
    mentions: list[tuple[str, str]] = field(default_factory=list)  # (clause_id, entity_id)
