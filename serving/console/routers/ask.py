"""Ask (role reader): a question box; the answer with its status and citation chips.

With JavaScript the answer streams: the form posts through htmx, the server keeps the question
under a single-use ticket in the session and answers with a fragment that opens a server-sent
event stream (htmx's sse extension) fed by ``QAService.ask_stream``: ``delta`` events append
text as the backend produces it, one ``final`` event replaces it with the verified answer and its
chips, and ``done`` closes the stream. Without JavaScript the form posts normally and the page
comes back with the answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from html import escape
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import StreamingResponse

from serving.console.deps import ConsoleDep, CsrfDep, ReaderDep, ServiceDep
from serving.console.present import answer_parts
from serving.console.sessions import ConsoleSession
from serving.console.web import PREFIX, Console, ConsoleRoute, role_at_least
from serving.http.errors import http_error
from serving.service import QAService
from serving.types import AnswerResult, Role

TRANSPORT = "console"

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _answer_context(result: AnswerResult, session: ConsoleSession) -> dict:
    return {
        "result": result,
        "parts": answer_parts(result),
        "can_audit": role_at_least(session, Role.AUDITOR),
    }


@router.get("/ask")
def ask_page(request: Request, console: ConsoleDep, session: ReaderDep) -> Response:
    return console.render(request, "ask.html", session, question="", result=None)


@router.post("/ask")
def ask(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: CsrfDep,
    question: Annotated[str, Form()] = "",
) -> Response:
    if request.headers.get("HX-Request"):
        # Validated by the service when the stream starts; an empty question is refused there too.
        ticket = console.sessions.add_ticket(session, question)
        return console.render(request, "_ask_stream.html", session, ticket=ticket)
    start = time.perf_counter()
    result = service.ask(question, None, session.caller)
    request.app.state.metrics.observe_answer(TRANSPORT, result, time.perf_counter() - start)
    return console.render(request, "ask.html", session, question=question, **_answer_context(result, session))


def _event(name: str, html: str) -> str:
    lines = html.split("\n")
    return f"event: {name}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _stream(
    request: Request, console: Console, service: QAService, session: ConsoleSession, question: str | None
) -> Iterator[str]:
    if question is None:
        message = "This question was already answered or has expired; ask again."
        yield _event(
            "final",
            console.fragment(request, "_error.html", session, status=410, code="GONE", message=message),
        )
        yield _event("done", "")
        return
    start = time.perf_counter()
    try:
        for event in service.ask_stream(question, None, session.caller):
            if isinstance(event, str):
                yield _event("delta", escape(event))
            else:
                request.app.state.metrics.observe_answer(TRANSPORT, event, time.perf_counter() - start)
                yield _event(
                    "final",
                    console.fragment(request, "_answer.html", session, **_answer_context(event, session)),
                )
    except Exception as exc:  # the stream has started: the error is shown in place of the answer
        error = http_error(exc)
        yield _event(
            "final",
            console.fragment(
                request, "_error.html", session, status=error.status, code=error.code, message=error.message
            ),
        )
    yield _event("done", "")


@router.get("/ask/stream")
def ask_stream(
    request: Request, console: ConsoleDep, service: ServiceDep, session: ReaderDep, ticket: str = ""
) -> Response:
    question = console.sessions.take_ticket(session, ticket)
    return StreamingResponse(
        _stream(request, console, service, session, question),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
