"""JSON bodies of the REST API. Field names mirror the proto messages in ``protos/kgqa/v1/qa.proto``
so a client can switch transports without renaming anything; enums are their proto names.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from kg.reader import ClauseView
from serving.types import AnswerRecord, AnswerResult, AnswerSummary

StatusName = Literal["VERIFIED", "UNVERIFIED", "NO_EVIDENCE"]


class AskRequest(BaseModel):
    """``POST /v1/ask``. Length and content of the question are checked by the service."""

    model_config = ConfigDict(extra="forbid")

    question: StrictStr = Field(description="The question, plain text (at most 2000 characters).")
    k: StrictInt = Field(default=0, description="Clauses to retrieve as evidence; 0 = server default.")
    stream: StrictBool = Field(
        default=False,
        description="Answer as Server-Sent Events: `delta` events, then one `final` event (an Answer).",
    )


class Citation(BaseModel):
    clause_id: str
    clause_version: int
    document_id: str
    document_title: str
    document_version: int
    clause_number: str
    section_path: list[str]
    page_start: int
    page_end: int
    quote: str = Field(description="The exact quote; `text[quote_start:quote_end]` of the clause version.")
    quote_start: int
    quote_end: int
    support_score: float
    verified: bool
    asserted: bool = False


class UnsupportedAtom(BaseModel):
    kind: str
    text: str
    normalized: str
    sentence: str


class Timings(BaseModel):
    retrieval_ms: float
    generation_ms: float
    verification_ms: float
    total_ms: float


class Answer(BaseModel):
    answer_id: str
    question: str
    text: str = Field(description="The answer with `[[clause_id]]` citation markers.")
    status: StatusName
    citations: list[Citation]
    unsupported: list[UnsupportedAtom]
    model_id: str
    graph_version: int
    timings: Timings
    created_at: str

    @classmethod
    def of(cls, result: AnswerResult) -> Answer:
        return cls.model_validate(
            {
                **{k: getattr(result, k) for k in ("answer_id", "question", "text", "model_id")},
                "status": result.status.value,
                "citations": [asdict(c) for c in result.citations],
                "unsupported": [asdict(a) for a in result.unsupported],
                "graph_version": result.graph_version,
                "timings": asdict(result.timings),
                "created_at": result.created_at,
            }
        )


class AnswerRecordOut(BaseModel):
    """The audit record of an answer (proto ``AnswerRecord``)."""

    answer: Answer
    actor: str = Field(description="The caller's key id (never the key).")
    record_hash: str
    prev_hash: str
    seq: int

    @classmethod
    def of(cls, record: AnswerRecord) -> AnswerRecordOut:
        return cls(
            answer=Answer.of(record.answer),
            actor=record.actor,
            record_hash=record.record_hash,
            prev_hash=record.prev_hash,
            seq=record.seq,
        )


class ClauseVersion(BaseModel):
    version: int
    status: str
    sha256: str
    created_at: str


class Triple(BaseModel):
    subject: str
    predicate: str
    object: str
    confidence: float
    origin: str


class Clause(BaseModel):
    clause_id: str
    version: int
    status: str
    number: str
    text: str
    document_id: str
    document_title: str
    document_version: int
    section_path: list[str]
    page_start: int
    page_end: int
    history: list[ClauseVersion]
    triples: list[Triple]
    refers_to: list[str]
    referred_by: list[str]

    @classmethod
    def of(cls, view: ClauseView) -> Clause:
            return cls(
            clause_id=view.clause_id,
            version=view.version,
            status=view.status or "",
            number=view.number or "",
            text=view.text or "",
            document_id=view.document.doc_id,
            document_title=view.document.title,
            document_version=view.document.version,
            section_path=list(view.section_path),
            page_start=view.page_start or 0,
            page_end=view.page_end or 0,
            history=[
                ClauseVersion(
                    version=h.version,
                    status=h.status or "",
                    sha256=h.sha256 or "",
                    created_at=str(h.created_at or ""),
                )
                for h in view.history
            ],
            triples=[
                Triple(
                    subject=t.subject,
                    predicate=t.predicate,
                    object=t.object,
                    confidence=t.confidence,
                    origin=t.origin,
                )
                for t in view.triples
            ],
            refers_to=[r.target for r in view.references_out],
            referred_by=[r.source for r in view.references_in],
        )


class AnswerSummaryOut(BaseModel):
    answer_id: str
    question: str
    status: StatusName
    created_at: str
    clause_version: int
    quote: str
    model_id: str

    @classmethod
    def of(cls, summary: AnswerSummary) -> AnswerSummaryOut:
        return cls(
            answer_id=summary.answer_id,
            question=summary.question,
            status=summary.status.value,
            created_at=str(summary.created_at),
            clause_version=summary.clause_version,
            quote=summary.quote,
            model_id=summary.model_id,
        )


class ListAnswersCitingClauseResponse(BaseModel):
    answers: list[AnswerSummaryOut]


class ErrorDetail(BaseModel):
    code: str = Field(description="The gRPC status name of the error, e.g. INVALID_ARGUMENT.")
    message: str


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail


__all__ = [
    "Answer",
    "AnswerRecordOut",
    "AnswerSummaryOut",
    "AskRequest",
    "Clause",
    "ErrorBody",
    "ListAnswersCitingClauseResponse",
]
