"""The QAService servicer: proto request -> one QAService call -> proto response.

No logic lives here (STYLE habit 7): authentication and error mapping are done by
:class:`serving.grpc.interceptors.ServiceInterceptor`, validation and authorization by
:class:`serving.service.QAService`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from kgqa.errors import DeadlineExceeded
from serving.grpc import convert, qa_pb2, qa_pb2_grpc
from serving.grpc.interceptors import TRANSPORT, current_caller
from serving.metrics import Metrics
from serving.service import QAService


def deadline_of(context: grpc.ServicerContext) -> float | None:
    """The client's deadline on the ``time.monotonic()`` clock, which the service checks.

    Raises:
        DeadlineExceeded: the deadline passed before the call reached the servicer.
    """
    remaining = context.time_remaining()
    if remaining is None:
        return None
    if remaining <= 0:
        raise DeadlineExceeded("the deadline passed before the request was served; allow more time")
    return time.monotonic() + remaining


class QAServicer(qa_pb2_grpc.QAServiceServicer):
    """gRPC face of :class:`QAService`.

    Args:
        service: the one service instance shared with the REST app.
        metrics: shared metrics (answers by status, Ask latency).
    """

    def __init__(self, service: QAService, metrics: Metrics) -> None:
        self._service = service
        self._metrics = metrics

    def Ask(self, request: qa_pb2.AskRequest, context: grpc.ServicerContext) -> qa_pb2.Answer:  # noqa: N802
        start = time.perf_counter()
        result = self._service.ask(
            request.question, request.k, current_caller(), deadline=deadline_of(context)
        )
        self._metrics.observe_answer(TRANSPORT, result, time.perf_counter() - start)
        return convert.answer_to_proto(result)

    def AskStream(  # noqa: N802
        self, request: qa_pb2.AskRequest, context: grpc.ServicerContext
    ) -> Iterator[qa_pb2.AskStreamEvent]:
        start = time.perf_counter()
        events = self._service.ask_stream(
            request.question, request.k, current_caller(), deadline=deadline_of(context)
        )
        for event in events:
            if isinstance(event, str):
                yield qa_pb2.AskStreamEvent(delta=event)
            else:
                self._metrics.observe_answer(TRANSPORT, event, time.perf_counter() - start)
                yield qa_pb2.AskStreamEvent(final=convert.answer_to_proto(event))

    def GetAnswer(  # noqa: N802
        self, request: qa_pb2.GetAnswerRequest, context: grpc.ServicerContext
    ) -> qa_pb2.AnswerRecord:
        return convert.record_to_proto(self._service.get_answer(request.answer_id, current_caller()))

    def GetClause(self, request: qa_pb2.GetClauseRequest, context: grpc.ServicerContext) -> qa_pb2.Clause:  # noqa: N802
        return convert.clause_to_proto(
            self._service.get_clause(request.clause_id, request.version, current_caller())
        )

    def ListAnswersCitingClause(  # noqa: N802
        self, request: qa_pb2.ListAnswersCitingClauseRequest, context: grpc.ServicerContext
    ) -> qa_pb2.ListAnswersCitingClauseResponse:
        summaries = self._service.list_answers_citing(request.clause_id, current_caller(), request.limit)
        return convert.summaries_to_proto(summaries)


__all__ = ["QAServicer", "deadline_of"]
