"""Typed values of the serving layer, shared by retrieval, backends, the service and transports."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from kg.verification.types import EvidenceClause


class Role(IntEnum):
    """Roles in increasing power; a role may do everything the roles below it may."""

    READER = 1
    AUDITOR = 2
    EDITOR = 3
    ADMIN = 4

    @classmethod
    def parse(cls, name: str) -> Role:
        return cls[name.strip().upper()]


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the key's id (never the key) and its role."""

    key_id: str
    role: Role


class AnswerStatus(StrEnum):
    VERIFIED = "VERIFIED"
    UNVERIFIED = "UNVERIFIED"
    NO_EVIDENCE = "NO_EVIDENCE"


@dataclass
class RetrievedClause:
    """A clause version retrieved as evidence, with its provenance and fused score.

    ``sources`` records which retrievers found it and with what rank, for debugging the fusion.
    """

    clause_id: str
    version: int
    doc_id: str
    doc_title: str
    doc_version: int
    number: str
    text: str
    section_path: list[str]
    page_start: int
    page_end: int
    score: float
    sources: dict[str, int] = field(default_factory=dict)


@dataclass
class Generation:
    """What an answer backend produced: text with ``[[clause_id]]`` markers."""

    text: str
    model_id: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True)
class AnswerScore:
    """How likely a model finds a given answer to a prompt (evaluation's perplexity).

    ``nll`` is the summed negative log-likelihood (nats) of the answer's ``tokens`` (its end-of-turn
    token included); None when prompt and answer do not fit the model's context.
    """

    nll: float | None
    tokens: int


@dataclass
class Citation:
    clause_id: str
    clause_version: int
    document_id: str
    document_title: str
    document_version: int
    clause_number: str
    section_path: list[str]
    page_start: int
    page_end: int
    quote: str
    quote_start: int
    quote_end: int
    support_score: float
    verified: bool
    asserted: bool = False
    """The answer relies on a fact an editor asserted for this clause (not in its text)."""


@dataclass
class UnsupportedAtom:
    kind: str
    text: str
    normalized: str
    sentence: str


@dataclass
class Timings:
    retrieval_ms: float = 0.0
    generation_ms: float = 0.0
    verification_ms: float = 0.0
    total_ms: float = 0.0


@dataclass
class AnswerResult:
    answer_id: str
    question: str
    text: str
    status: AnswerStatus
    citations: list[Citation]
    unsupported: list[UnsupportedAtom]
    model_id: str
    graph_version: int
    timings: Timings
    created_at: str


@dataclass
class AnswerRecord:
    """An answer as the audit trail holds it."""

    answer: AnswerResult
    actor: str
    seq: int
    record_hash: str
    prev_hash: str


@dataclass
class AnswerSummary:
    answer_id: str
    question: str
    status: AnswerStatus
    created_at: str
    clause_version: int
    quote: str
    model_id: str


@dataclass
class CitationTrace:
    """One citation of a past answer: the clause version cited then, and the clause's latest version.

    ``then`` is None when the cited version is no longer in the graph; ``now`` is the active
    version, or the newest one when the clause was retired.
    """

    citation: Citation
    then: EvidenceClause | None
    now: EvidenceClause | None


@dataclass
class AnswerTrace:
    """An answer's audit record with what each citation pointed at then and points at now."""

    record: AnswerRecord
    citations: list[CitationTrace]
