"""The openai backend against our own OpenAI-compatible route, over a real socket.

The route serves the tiny transformers backend; the ``openai`` backend (the real ``openai``
client) must get exactly what that backend produces directly, streamed or not, since decoding is
greedy. The same route with a retriever answers from retrieved clauses.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from kg.llm_endpoint import LlmEndpoint
from kg.prompting import REFUSAL_ANSWER
from kgqa.errors import ConfigError, DeadlineExceeded
from serving.backends import BackendConfig, make_backend
from serving.http.errors import install_error_handlers
from serving.http.openai_compat import make_openai_router

QUESTION = "存货应当按照什么进行初始计量？"
MAX_NEW = 24


class _Server:
    """uvicorn on 127.0.0.1, port 0, in a thread."""

    def __init__(self, app: FastAPI) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _app(router) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    return app


@pytest.fixture(scope="module")
def local(tiny_model_dir):
    return make_backend(
        BackendConfig(kind="transformers", model_path=str(tiny_model_dir), max_new_tokens=MAX_NEW)
    )


@pytest.fixture(scope="module")
def passthrough_url(local):
    """The route without a retriever: the prompt the client sends reaches the model unchanged."""
    with _Server(_app(make_openai_router(lambda: local))) as url:
        yield url


@pytest.fixture(scope="module")
def remote(passthrough_url, local):
    return make_backend(
        BackendConfig(kind="openai", max_new_tokens=MAX_NEW),
        LlmEndpoint(base_url=passthrough_url, model=local.model_id),
    )


@pytest.fixture(scope="module")
def contexts(corpus_clauses):
    return [corpus_clauses["CAS-1-存货/第五条"], corpus_clauses["CAS-1-存货/第六条"]]


def test_remote_generation_equals_local(remote, local, contexts):
    expected = local.generate(QUESTION, contexts)
    got = remote.generate(QUESTION, contexts)
    assert got.text == expected.text and got.text
    assert got.model_id == local.model_id
    assert (got.prompt_tokens, got.completion_tokens) == (expected.prompt_tokens, expected.completion_tokens)


def test_remote_stream_equals_local(remote, local, contexts):
    deltas = list(remote.stream(QUESTION, contexts))
    assert len(deltas) > 1  # really streamed, token by token
    assert "".join(deltas) == local.generate(QUESTION, contexts).text


def test_wire_format_is_openai(passthrough_url, local, contexts):
    from kg.prompting import build_messages

    body = {"model": "anything", "messages": build_messages(QUESTION, contexts), "max_tokens": 5}
    reply = httpx.post(f"{passthrough_url}/chat/completions", json=body, timeout=30).json()
    assert reply["object"] == "chat.completion" and reply["id"].startswith("chatcmpl-")
    assert reply["model"] == local.model_id
    choice = reply["choices"][0]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "length"  # 5 tokens of a model that never stops by itself
    assert reply["usage"]["completion_tokens"] == 5
    assert reply["usage"]["total_tokens"] == reply["usage"]["prompt_tokens"] + 5

    with httpx.stream("POST", f"{passthrough_url}/chat/completions", json={**body, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"finish_reason": "stop"' in events[-2] and '"chat.completion.chunk"' in events[0]


def test_a_question_is_required(passthrough_url):
    reply = httpx.post(
        f"{passthrough_url}/chat/completions",
        json={"messages": [{"role": "system", "content": "只有系统消息"}]},
        timeout=30,
    )
    assert reply.status_code == 422
    assert "user message" in reply.json()["error"]["message"]


def test_with_a_retriever_the_route_answers_from_retrieved_clauses(corpus_clauses):
    """Extractive backend + retriever: the OpenAI route gives the same cited answer as the backend."""
    extractive = make_backend(BackendConfig())
    clauses = [corpus_clauses["CAS-1-存货/第五条"]]
    asked: list[tuple[str, int]] = []

    def retrieve(question: str, k: int):
        asked.append((question, k))
        return clauses if "存货" in question else []

    with _Server(_app(make_openai_router(lambda: extractive, retrieve, k=3))) as url:
        remote = make_backend(BackendConfig(kind="openai"), LlmEndpoint(base_url=url, model="extractive"))
        assert remote.generate(QUESTION, []).text == extractive.generate(QUESTION, clauses).text
        assert asked[-1] == (QUESTION, 3)
        assert "".join(remote.stream(QUESTION, [])) == extractive.generate(QUESTION, clauses).text
        assert remote.generate("董事会任期几年？", []).text == REFUSAL_ANSWER


def test_extractive_without_retriever_is_refused(corpus_clauses):
    with _Server(_app(make_openai_router(lambda: make_backend(BackendConfig())))) as url:
        reply = httpx.post(
            f"{url}/chat/completions", json={"messages": [{"role": "user", "content": QUESTION}]}, timeout=30
        )
    assert reply.status_code == 422
    assert "retrieved clauses" in reply.json()["error"]["message"]


def test_transient_failures_are_retried(corpus_clauses):
    extractive = make_backend(BackendConfig())
    clauses = [corpus_clauses["CAS-1-存货/第五条"]]
    app = _app(make_openai_router(lambda: extractive, lambda q, k: clauses))
    calls: list[int] = []

    @app.middleware("http")
    async def flaky(request, call_next):
        calls.append(1)
        if len(calls) == 1:
            return JSONResponse({"error": {"message": "warming up"}}, status_code=503)
        return await call_next(request)

    with _Server(app) as url:
        remote = make_backend(BackendConfig(kind="openai"), LlmEndpoint(base_url=url, model="m", max_retries=2))
        assert remote.generate(QUESTION, []).text == extractive.generate(QUESTION, clauses).text
    assert len(calls) == 2


def test_the_deadline_bounds_a_slow_endpoint():
    def slow_retriever(question: str, k: int):
        time.sleep(2.0)
        return []

    with _Server(_app(make_openai_router(lambda: make_backend(BackendConfig()), slow_retriever))) as url:
        remote = make_backend(BackendConfig(kind="openai"), LlmEndpoint(base_url=url, model="m", max_retries=5))
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            remote.generate(QUESTION, [], deadline=start + 0.3)
        assert time.monotonic() - start < 1.0  # no retries past the deadline


def test_unreachable_endpoint_and_missing_settings():
    from kgqa.errors import NotReady

    with pytest.raises(ConfigError, match="KGQA_LLM__BASE_URL and KGQA_LLM__MODEL"):
        make_backend(BackendConfig(kind="openai"))
    dead = make_backend(
        BackendConfig(kind="openai"), LlmEndpoint(base_url="http://127.0.0.1:9/v1", model="m", max_retries=0)
    )
    with pytest.raises(NotReady):
        dead.generate(QUESTION, [])
    assert dead.generate(QUESTION, [], deadline=time.monotonic() - 1).text == ""
