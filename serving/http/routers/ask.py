"""``POST /v1/ask``: a question in, an answer with verified citations out (JSON or SSE)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from serving.http.deps import CallerDep, DeadlineDep, MetricsDep, ServiceDep
from serving.http.errors import http_error
from serving.http.schemas import Answer, AskRequest, ErrorBody
from serving.metrics import Metrics
from serving.types import AnswerResult

TRANSPORT = "http"

router = APIRouter(prefix="/v1", tags=["ask"])

_SSE_DOC = (
    "With `stream: true` the answer is a `text/event-stream`: `event: delta` messages with "
    '`{"delta": "..."}`, then one `event: final` with `{"final": Answer}` (an `event: error` with '
    "the error body if the answer fails after the stream started)."
)


def _sse(event: str, payload: dict) -> bytes:
    # json.dumps escapes newlines, so every payload is a single `data:` line.
    return f"event: {event}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


def _stream(
    first: str | AnswerResult, rest: Iterator[str | AnswerResult], metrics: Metrics, start: float
) -> Iterator[bytes]:
    event: str | AnswerResult = first
    try:
        while True:
            if isinstance(event, str):
                yield _sse("delta", {"delta": event})
            else:
                metrics.observe_answer(TRANSPORT, event, time.perf_counter() - start)
                yield _sse("final", {"final": Answer.of(event).model_dump(mode="json")})
            event = next(rest)
    except StopIteration:
        return
    except Exception as exc:  # the 200 is already sent: report the error in-band
        yield _sse("error", http_error(exc).body())


@router.post(
    "/ask",
    response_model=Answer,
    summary="Answer a question (role reader)",
    description="Answers from the clause graph; every citation is verified against it. " + _SSE_DOC,
    responses={
        200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        422: {"model": ErrorBody},
        503: {"model": ErrorBody},
        504: {"model": ErrorBody},
    },
)
def ask(
    body: AskRequest, service: ServiceDep, caller: CallerDep, deadline: DeadlineDep, metrics: MetricsDep
) -> Answer | StreamingResponse:
    start = time.perf_counter()
    if not body.stream:
        result = service.ask(body.question, body.k, caller, deadline=deadline)
        metrics.observe_answer(TRANSPORT, result, time.perf_counter() - start)
        return Answer.of(result)
    events = service.ask_stream(body.question, body.k, caller, deadline=deadline)
    # Validation and authorization run on the first step: fail them here, as a proper 4xx,
    # before the 200 and the event stream begin.
    first = next(events)
    return StreamingResponse(
        _stream(first, events, metrics, start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
