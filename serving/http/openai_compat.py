"""``POST /v1/chat/completions``: OpenAI's chat API over an answer backend.

Two uses. Tools that speak OpenAI (chat UIs, evaluation harnesses, our own ``openai`` backend and
dataset generation) can point at kgqa. With a ``retriever`` the last user message is the question
and the clauses come from retrieval, exactly as in ``/v1/ask`` but without verification and audit
(use ``/v1/ask`` for answers that must be verified). Without one, the messages are passed to the
model unchanged, for callers that put the clauses in the system message themselves (dataset
generation builds them with :func:`kg.prompting.build_messages`); this needs a chat backend
(transformers, vllm, openai), the extractive backend has no use for a raw prompt.

Wire format as OpenAI's: ``chat.completion`` objects, or with ``stream: true`` Server-Sent Events
``data: {chat.completion.chunk}`` ending with ``data: [DONE]``. Errors before the stream starts
are HTTP errors (through the app's KgqaError handlers); after it started, one ``data:`` event
with an ``error`` object, which the ``openai`` client raises as ``APIError``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from fastapi import APIRouter, params
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from kgqa.errors import InvalidArgument
from serving.backends.base import AnswerBackend, ChatBackend
from serving.http.deps import DeadlineDep
from serving.http.errors import http_error
from serving.types import Generation, RetrievedClause
from serving.validation import validate_question, validate_text

BackendProvider = Callable[[], AnswerBackend]
ClauseRetriever = Callable[[str, int], list[RetrievedClause]]


class ContentPart(BaseModel):
    """A part of a multi-part message; only text parts carry anything kgqa can use."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's request kgqa honours; other fields are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, description="Ignored: the active model answers.")
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0, description="0 = greedy.")
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, description="Newer name of max_tokens.")
    stream: bool = False


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


def make_openai_router(
    backend_provider: BackendProvider,
    retriever: ClauseRetriever | None = None,
    *,
    k: int = 5,
    max_question_chars: int = 2000,
    dependencies: Sequence[params.Depends] | None = None,
) -> APIRouter:
    """The OpenAI-compatible router.

    Args:
        backend_provider: returns the active backend on each request (so activating another
            model in a running service takes effect on the next request).
        retriever: ``(question, k) -> clauses``; None passes the messages to the model unchanged.
        k: clauses retrieved per question.
        max_question_chars: the longest question (the last user message), as for ``/v1/ask``.
        dependencies: router-wide dependencies, e.g. the app's API-key check.
    """
    router = APIRouter(prefix="/v1", tags=["openai"], dependencies=list(dependencies or ()))

    @router.post(
        "/chat/completions",
        response_model=ChatCompletion,
        summary="OpenAI-compatible chat completion",
        responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    )
    def chat_completions(body: ChatCompletionRequest, deadline: DeadlineDep) -> Any:
        backend = backend_provider()
        max_tokens = body.max_completion_tokens or body.max_tokens
        run = _runner(backend, retriever, k, body, max_tokens, deadline, max_question_chars)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if not body.stream:
            generation: Generation = run(False)
            finish = "length" if max_tokens and generation.completion_tokens >= max_tokens else "stop"
            return ChatCompletion(
                id=completion_id,
                created=created,
                model=generation.model_id,
                choices=[Choice(message=AssistantMessage(content=generation.text), finish_reason=finish)],
                usage=Usage(
                    prompt_tokens=generation.prompt_tokens,
                    completion_tokens=generation.completion_tokens,
                    total_tokens=generation.prompt_tokens + generation.completion_tokens,
                ),
            )
        model_id = backend.model_id
        deltas: Iterator[str] = iter(run(True))
        # Start generating now, so that a failure before the first token is a proper HTTP error.
        first = next(deltas, None)
        return StreamingResponse(
            _sse_chunks(completion_id, created, model_id, first, deltas),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


def _runner(
    backend: AnswerBackend,
    retriever: ClauseRetriever | None,
    k: int,
    body: ChatCompletionRequest,
    max_tokens: int | None,
    deadline: float | None,
    max_question_chars: int,
) -> Callable[[bool], Any]:
    """``run(stream)``: the call that answers this request, as a Generation or text deltas.

    The messages are validated as ``/v1/ask`` validates its question, before any work: the last
    user message is the question (not empty, at most ``max_question_chars``, plain text) and no
    message may carry control characters. Errors name the message, e.g. ``messages[2].content``.
    """
    for i, message in enumerate(body.messages):
        validate_text(message.text(), f"messages[{i}].content")
    asked = [i for i, m in enumerate(body.messages) if m.role == "user"]
    if not asked:
        raise InvalidArgument("messages: a user message (the question) is needed")
    last = asked[-1]
    question = validate_question(body.messages[last].text(), max_question_chars, f"messages[{last}].content")
    if retriever is not None:
        contexts = retriever(question, k)
        return lambda stream: (backend.stream if stream else backend.generate)(
            question, contexts, deadline=deadline
        )
    if not isinstance(backend, ChatBackend):
        raise InvalidArgument(
            f"the {backend.model_id} backend answers only from retrieved clauses; "
            "this endpoint has no retriever, so use a chat backend or /v1/ask"
        )
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    options = {"deadline": deadline, "max_new_tokens": max_tokens, "temperature": body.temperature}
    return lambda stream: (backend.stream_messages if stream else backend.generate_messages)(
        messages, **options
    )


def _sse_chunks(
    completion_id: str, created: int, model: str, first: str | None, rest: Iterator[str]
) -> Iterator[bytes]:
    def chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()

    yield chunk({"role": "assistant", "content": ""})
    try:
        if first is not None:
            yield chunk({"content": first})
            for text in rest:
                yield chunk({"content": text})
    except Exception as exc:  # the 200 is already sent: report the error in-band, OpenAI style
        info = http_error(exc)
        error = {"error": {"message": info.message, "type": "server_error", "code": info.code}}
        yield f"data: {json.dumps(error, ensure_ascii=False)}\n\n".encode()
        return
    finally:
        close = getattr(rest, "close", None)
        if close is not None:  # a client that went away stops the generation too
            close()
    yield chunk({}, "stop")
    yield b"data: [DONE]\n\n"


__all__ = ["ChatCompletion", "ChatCompletionRequest", "make_openai_router"]
