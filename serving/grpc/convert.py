"""Service values -> protobuf messages. Pure functions, no I/O, so the servicer stays one call deep.

Field names match the proto one to one; the REST schemas (``serving/http/schemas.py``) use the
same names, so a JSON answer and a gRPC answer read the same.
"""

from __future__ import annotations

from kg.reader import ClauseView
from serving.grpc import qa_pb2
from serving.types import AnswerRecord, AnswerResult, AnswerStatus, AnswerSummary


def status_to_proto(status: AnswerStatus) -> int:
    return qa_pb2.AnswerStatus.Value(status.value)


def answer_to_proto(result: AnswerResult) -> qa_pb2.Answer:
    return qa_pb2.Answer(
        answer_id=result.answer_id,
        question=result.question,
        text=result.text,
        status=status_to_proto(result.status),
        citations=[
            qa_pb2.Citation(
                clause_id=c.clause_id,
                clause_version=c.clause_version,
                document_id=c.document_id,
                document_title=c.document_title,
                document_version=c.document_version,
                clause_number=c.clause_number,
                section_path=c.section_path,
                page_start=c.page_start,
                page_end=c.page_end,
                quote=c.quote,
                quote_start=c.quote_start,
                quote_end=c.quote_end,
                support_score=c.support_score,
                verified=c.verified,
                asserted=c.asserted,
            )
            for c in result.citations
        ],
        unsupported=[
            qa_pb2.UnsupportedAtom(kind=a.kind, text=a.text, normalized=a.normalized, sentence=a.sentence)
            for a in result.unsupported
        ],
        model_id=result.model_id,
        graph_version=result.graph_version,
        timings=qa_pb2.Timings(
            retrieval_ms=result.timings.retrieval_ms,
            generation_ms=result.timings.generation_ms,
            verification_ms=result.timings.verification_ms,
            total_ms=result.timings.total_ms,
        ),
        created_at=result.created_at,
    )


def record_to_proto(record: AnswerRecord) -> qa_pb2.AnswerRecord:
    return qa_pb2.AnswerRecord(
        answer=answer_to_proto(record.answer),
        actor=record.actor,
        record_hash=record.record_hash,
        prev_hash=record.prev_hash,
        seq=record.seq,
    )


def clause_to_proto(view: ClauseView) -> qa_pb2.Clause:
    return qa_pb2.Clause(
        clause_id=view.clause_id,
        version=view.version,
        status=view.status or "",
        number=view.number or "",
        text=view.text or "",
        document_id=view.document.doc_id,
        document_title=view.document.title,
        document_version=view.document.version,
        section_path=view.section_path,
        page_start=view.page_start or 0,
        page_end=view.page_end or 0,
        history=[
            qa_pb2.ClauseVersion(
                version=h.version,
                status=h.status or "",
                sha256=h.sha256 or "",
                created_at=str(h.created_at or ""),
            )
            for h in view.history
        ],
        triples=[
            qa_pb2.Triple(
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


def summaries_to_proto(summaries: list[AnswerSummary]) -> qa_pb2.ListAnswersCitingClauseResponse:
    return qa_pb2.ListAnswersCitingClauseResponse(
        answers=[
            qa_pb2.AnswerSummary(
                answer_id=s.answer_id,
                question=s.question,
                status=status_to_proto(s.status),
                created_at=str(s.created_at),
                clause_version=s.clause_version,
                quote=s.quote,
                model_id=s.model_id,
            )
            for s in summaries
        ]
    )


__all__ = ["answer_to_proto", "clause_to_proto", "record_to_proto", "summaries_to_proto"]
