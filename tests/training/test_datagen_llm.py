"""LLM question generation against kgqa's own OpenAI-compatible route running the tiny model.

No fake clients: the ``openai`` client talks over a real socket to ``/v1/chat/completions``
served by uvicorn, backed by the transformers backend with the tiny Qwen. A middleware counts
requests (and the most in flight) server-side, and can answer the next requests with an error
status, so cache hits, resumption, retries and the concurrency cap are measured where the
requests arrive. The snapshot is built from real corpus clauses by the ingestion pipeline
(no Neo4j). The tiny model writes garbage, which must end as ``llm_unparseable`` rejections; a
well-formed reply is planted in the cache (as a previous run with a real model would have left
it) to check how pairs are built from it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from kg.llm_endpoint import LlmEndpoint
from kg.prompting import REFUSAL_ANSWER
from kgqa.errors import ConfigError
from serving.backends import BackendConfig, make_backend
from serving.http.errors import install_error_handlers
from serving.http.openai_compat import make_openai_router
from training.datagen.llm import (
    LlmGenerator,
    LlmJudge,
    LlmParaphraser,
    LlmTarget,
    generation_messages,
    judge_messages,
    outline_text,
    parse_generation,
    parse_judgement,
    parse_paraphrases,
)
from training.datagen.llm_client import (
    ChatClient,
    ChatRequest,
    LlmConfig,
    LlmEndpointConfigError,
    LlmError,
    LlmUnavailable,
    PromptCache,
    cache_key,
)
from training.datagen.types import DocumentOutline, GraphSnapshot, SourceClause

MAX_TOKENS = 24
DOC = "standards/企业会计准则第1号——存货（2006）.md"


class _Counter:
    """Server-side request accounting, and error statuses to answer the next requests with."""

    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_with: list[int] = []
        self.delay_s = 0.0

    def reset(self) -> None:
        self.__init__()


class _Server:
    """uvicorn on 127.0.0.1, port 0, in a thread (as in tests/serving/test_openai_backend.py)."""

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


@pytest.fixture(scope="module")
def counter() -> _Counter:
    return _Counter()


@pytest.fixture(scope="module")
def endpoint(tiny_model_dir, counter):
    """The passthrough route (no retriever): our prompts reach the tiny model unchanged."""
    backend = make_backend(
        BackendConfig(kind="transformers", model_path=str(tiny_model_dir), max_new_tokens=MAX_TOKENS)
    )
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_openai_router(lambda: backend))

    @app.middleware("http")
    async def count(request, call_next):
        counter.requests += 1
        if counter.fail_with:
            status = counter.fail_with.pop(0)
            return JSONResponse({"error": {"message": f"planted {status}"}}, status_code=status)
        counter.in_flight += 1
        counter.max_in_flight = max(counter.max_in_flight, counter.in_flight)
        try:
            await asyncio.sleep(0.02 + counter.delay_s)  # let concurrent requests overlap visibly
            return await call_next(request)
        finally:
            counter.in_flight -= 1

    with _Server(app) as url:
        yield url


@pytest.fixture(autouse=True)
def _fresh_counter(counter):
    counter.reset()


def _config(endpoint: str, tmp_path: Path | None, **overrides) -> LlmConfig:
    values = {
        "base_url": endpoint,
        "model": "tiny-qwen",
        "max_tokens": MAX_TOKENS,
        "backoff_s": 0.01,
        "cache_dir": tmp_path / "cache" if tmp_path is not None else None,
        **overrides,
    }
    return LlmConfig(**values)


@pytest.fixture(scope="module")
def snapshot(corpus_dir) -> GraphSnapshot:
    """Active clauses of the 存货 standard as the graph would give them (ingestion, no Neo4j)."""
    from ingest.pipeline import IngestPipeline

    tree = IngestPipeline().process(corpus_dir / DOC)
    sections = {s.section_id: s for s in tree.sections}

    def path(section_id: str) -> tuple[str, ...]:
        out: list[str] = []
        node = sections.get(section_id)
        while node is not None:
            out.insert(0, f"{node.number} {node.title}".strip())
            node = sections.get(node.parent_id) if node.parent_id else None
        return tuple(out)

    by_section: dict[str, list[str]] = {}
    for c in tree.clauses:
        by_section.setdefault(c.section_id, []).append(c.clause_id)
    clauses: dict[str, SourceClause] = {}
    for c in tree.clauses:
        siblings = by_section[c.section_id]
        i = siblings.index(c.clause_id)
        clauses[c.clause_id] = SourceClause(
            clause_id=c.clause_id,
            version=2 if c.number == "第五条" else 1,
            doc_id=tree.doc_id,
            doc_title=tree.title,
            number=c.number,
            text=c.text,
            section_path=path(c.section_id),
            items=tuple(item.text for item in c.items),
            neighbours=tuple(siblings[j] for j in (i - 1, i + 1) if 0 <= j < len(siblings)),
        )
    outline = DocumentOutline(tree.doc_id, tree.title, tuple(f"{s.number} {s.title}" for s in tree.sections))
    return GraphSnapshot(graph_version=7, clauses=clauses, tables=(), outlines={tree.doc_id: outline})


def _targets(n: int) -> list[LlmTarget]:
    numbers = ["第三条", "第四条", "第五条", "第六条", "第七条", "第八条", "第九条", "第十条"]
    qtypes = ["definition", "condition", "fact", "fact", "procedure", "definition", "fact", "obligation"]
    return [LlmTarget(qtypes[i], (f"CAS-1-存货/{numbers[i]}",), "基础", "formal") for i in range(n)]


# --------------------------------------------------------------------------------------------
# Parsing and prompts (no server)


def test_parse_generation_handles_what_models_write():
    good = ("存货怎么初始计量？", "存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。")
    body = json.dumps({"question": good[0], "answer": good[1]}, ensure_ascii=False)
    assert parse_generation(body) == good
    assert parse_generation(f"```json\n{body}\n```") == good
    assert parse_generation(f"好的，以下是题目：\n{body}\n希望有帮助。") == good
    assert parse_generation(f"思考：先看条款{{不是JSON}}。\n```\n{body}\n```") == good
    assert parse_generation(f"问题：{good[0]}\n答案：{good[1]}") == good
    assert parse_generation('{"问题": "什么是存货？", "答案": "存货是……[[CAS-1-存货/第三条]]。"}') == (
        "什么是存货？",
        "存货是……[[CAS-1-存货/第三条]]。",
    )
    # Raw newlines inside the strings (common in 分析/依据/结论 answers) are accepted.
    cot = '{"question": "存货成本包括什么？", "answer": "分析：问成本构成[[CAS-1-存货/第五条]]。\n结论：采购成本等[[CAS-1-存货/第五条]]。"}'
    assert parse_generation(cot)[1].startswith("分析：") and "\n结论：" in parse_generation(cot)[1]
    for bad in ["", "存货 成本 计量 采购", '{"question": "只有问题"}', '{"question": " ", "answer": "x"}', "[1, 2]"]:
        assert parse_generation(bad) is None, bad


def test_parse_judgement_and_paraphrases():
    assert parse_judgement('{"score": 4, "reason": "答案有依据"}') == (4.0, "答案有依据")
    assert parse_judgement('```json\n{"score": "5", "reason": "好"}\n```') == (5.0, "好")
    assert parse_judgement('评分：2，数字与原文不符')[0] == 2.0
    assert parse_judgement('{"score": 9, "reason": "超出范围"}') is None
    assert parse_judgement("不错") is None
    q = "存货应当按照什么进行初始计量？"
    reply = '["存货初始计量按什么来？", "存货应当按照什么进行初始计量", "存货初始计量的依据是什么？"]'
    assert parse_paraphrases(reply, q, 5) == ["存货初始计量按什么来？", "存货初始计量的依据是什么？"]
    assert parse_paraphrases("1. 存货初始计量按什么来？\n2、存货按什么入账？\n3. 存货按什么入账", q, 5) == [
        "存货初始计量按什么来？",
        "存货按什么入账？",
    ]
    assert len(parse_paraphrases(reply, q, 1)) == 1


def test_generation_prompt_carries_clause_context(snapshot):
    clause = snapshot.clauses["CAS-1-存货/第五条"]
    outline = snapshot.outlines["CAS-1-存货"]
    messages = generation_messages("fact", [clause], outline, difficulty="进阶", style="everyday", cot=True)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "《企业会计准则第1号——存货（2006）》" in user
    assert "第三章 计量 第五条" in user  # the section path a chunk loses
    assert all(f"- {s}" in user for s in outline.sections)  # the document outline
    assert "存货应当按照成本进行初始计量" in user and "[[CAS-1-存货/第五条]]" in user
    assert "分析：" in user and "结论：" in user and '"question"' in user and '"answer"' in user
    assert "照条款原文抄写" in user and "口语" in user and "进阶" in user
    plain = generation_messages("fact", [clause], outline, difficulty="基础", style="formal", cot=False)[1]
    assert "分析：" not in plain["content"]
    shown = generation_messages(
        "fact", [clause], outline, difficulty="基础", style="formal", cot=False,
        shown_text={clause.clause_id: "存货应当按照成本进行初始计量存货成本包括采购成本"},
    )[1]["content"]
    assert "初始计量存货成本" in shown and "初始计量。存货成本" not in shown
    refusal = generation_messages("unanswerable", [clause], outline, difficulty="基础", style="formal", cot=False)
    assert REFUSAL_ANSWER in refusal[1]["content"]


def test_long_outlines_are_cut_around_the_clause():
    sections = tuple(f"第{i}章 第{i}章的标题文字" for i in range(1, 201))
    text = outline_text(DocumentOutline("D", "长手册", sections), focus=["第150章 第150章的标题文字"], max_chars=300)
    assert len(text) <= 300 + 40
    assert "第150章 第150章的标题文字" in text and "第1章 " not in text
    assert text.count("……") >= 2 and "共 200 个标题" in text


def test_cache_keys_and_atomic_entries(tmp_path):
    messages = [{"role": "user", "content": "问"}]
    key = cache_key("m", messages, 0.7, 24, 0)
    assert key == cache_key("m", [{"content": "问", "role": "user"}], 0.7, 24, 0)  # canonical JSON
    others = {
        cache_key("m2", messages, 0.7, 24, 0),
        cache_key("m", [{"role": "user", "content": "问 "}], 0.7, 24, 0),
        cache_key("m", messages, 0.0, 24, 0),
        cache_key("m", messages, 0.7, 25, 0),
        cache_key("m", messages, 0.7, 24, 1),
    }
    assert key not in others and len(others) == 5
    cache = PromptCache(tmp_path)
    assert cache.get(key) is None and cache.misses == 1
    cache.put(key, {"text": "答", "prompt_tokens": 3, "completion_tokens": 1})
    assert cache.get(key)["text"] == "答" and cache.hits == 1
    assert not list(tmp_path.rglob("*.tmp"))  # no temp files left behind
    # A writer killed mid-write leaves only a temp file, never a torn entry; a hand-broken
    # entry is a miss, and the next put repairs it.
    other = cache_key("m", messages, 0.7, 24, 2)
    cache.path(other).parent.mkdir(parents=True, exist_ok=True)
    (cache.path(other).parent / f".{other[:8]}-x.tmp").write_text('{"text": "半', encoding="utf-8")
    assert cache.get(other) is None
    cache.path(other).write_text('{"text": "半', encoding="utf-8")
    assert cache.get(other) is None
    cache.put(other, {"text": "全"})
    assert cache.get(other)["text"] == "全" and len(cache) == 2


def test_the_endpoint_is_the_shared_llm_endpoint_config():
    config = LlmConfig(base_url="http://h/v1/", model="m")
    assert isinstance(config, LlmEndpoint) and config.base_url == "http://h/v1"
    assert config.key == "EMPTY"  # vLLM's convention when no key is configured
    assert LlmConfig(base_url="http://h/v1", model="m", api_key="k").key == "k"
    assert "sk-secret" not in repr(LlmConfig(base_url="http://h/v1", model="m", api_key="sk-secret"))


# --------------------------------------------------------------------------------------------
# Against the real route


def test_round_trip_returns_text_and_token_counts(endpoint, counter, tmp_path):
    client = ChatClient(_config(endpoint, tmp_path))
    done = client.complete([{"role": "user", "content": "存货应当按照什么进行初始计量？"}])
    assert done.text and not done.cached
    assert done.prompt_tokens > 0 and 0 < done.completion_tokens <= MAX_TOKENS
    assert counter.requests == 1
    assert client.usage.to_dict() == {
        "requests": 1,
        "cache_hits": 0,
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "failures": 0,
    }
    again = client.complete([{"role": "user", "content": "存货应当按照什么进行初始计量？"}])
    assert again == type(done)(done.text, done.prompt_tokens, done.completion_tokens, cached=True)
    assert counter.requests == 1 and client.usage.cache_hits == 1


def test_garbage_is_rejected_and_a_second_run_is_served_from_the_cache(endpoint, counter, snapshot, tmp_path):
    targets = _targets(4)
    first = LlmGenerator(ChatClient(_config(endpoint, tmp_path, n_samples=2)))
    pairs, rejected = first.generate(snapshot, targets)
    # The tiny model's random text is not a question and answer: counted, not crashed on.
    assert pairs == [] and len(rejected) == 8
    assert {r.reason for r in rejected} == {"llm_unparseable"}
    assert all(r.detail for r in rejected)  # the raw reply is kept for the report
    assert counter.requests == 8
    assert first.client.usage.prompt_tokens > 0 and first.client.usage.completion_tokens > 0

    second = LlmGenerator(ChatClient(_config(endpoint, tmp_path, n_samples=2)))
    pairs2, rejected2 = second.generate(snapshot, targets)
    assert counter.requests == 8  # zero HTTP requests the second time
    assert second.client.usage.cache_hits == 8 and second.client.usage.requests == 0
    assert second.client.usage.prompt_tokens == 0  # nothing paid
    assert [(r.clause_ids, r.detail) for r in rejected2] == [(r.clause_ids, r.detail) for r in rejected]


def test_an_interrupted_build_resumes_without_paying_twice(endpoint, counter, snapshot, tmp_path):
    targets = _targets(6)
    LlmGenerator(ChatClient(_config(endpoint, tmp_path))).generate(snapshot, targets[:3])
    assert counter.requests == 3
    resumed = LlmGenerator(ChatClient(_config(endpoint, tmp_path)))
    _, rejected = resumed.generate(snapshot, targets)
    assert counter.requests == 6  # only the other half was requested
    assert resumed.client.usage.cache_hits == 3 and resumed.client.usage.requests == 3
    assert [r.clause_ids[0] for r in rejected] == [t.clause_ids[0] for t in targets]


def test_concurrency_cap_is_respected(endpoint, counter, tmp_path):
    client = ChatClient(_config(endpoint, None, concurrency=2))
    requests = [ChatRequest([{"role": "user", "content": f"第{i}个问题：存货如何计量？"}]) for i in range(8)]
    results = client.complete_many(requests)
    assert counter.requests == 8 and all(r.text for r in results)
    assert counter.max_in_flight == 2  # overlapped, but never more than the cap

    serial = ChatClient(_config(endpoint, None, concurrency=1))
    counter.reset()
    serial.complete_many(requests[:4])
    assert counter.max_in_flight == 1


def test_transient_errors_are_retried_with_backoff(endpoint, counter, tmp_path):
    client = ChatClient(_config(endpoint, None, max_retries=3, backoff_s=0.05))
    counter.fail_with = [503, 429]
    start = time.monotonic()
    done = client.complete([{"role": "user", "content": "存货如何计量？"}])
    assert done.text and counter.requests == 3
    assert time.monotonic() - start >= 0.05 + 0.1  # waited 0.05 s, then 0.1 s (exponential)
    assert client.usage.requests == 3 and client.usage.failures == 0

    counter.reset()
    counter.fail_with = [500, 500, 500, 500]
    with pytest.raises(LlmError, match=r"HTTP 500.*after 4 attempts") as err:
        client.complete([{"role": "user", "content": "存货如何计量？"}])
    assert endpoint in str(err.value) and counter.requests == 4 and client.usage.failures == 1


def test_a_timeout_fails_that_request_only(endpoint, counter):
    client = ChatClient(_config(endpoint, None, max_retries=1, timeout_s=0.2))
    counter.delay_s = 0.6
    with pytest.raises(LlmError, match=r"timed out after 2 attempts") as err:
        client.complete([{"role": "user", "content": "问"}])
    assert not isinstance(err.value, LlmUnavailable)  # a slow prompt is not a dead endpoint
    assert counter.requests == 2


def test_client_errors_are_not_retried(endpoint, counter):
    client = ChatClient(_config(endpoint, None, max_retries=3))
    counter.fail_with = [400]
    with pytest.raises(LlmError, match="HTTP 400: planted 400") as err:
        client.complete([{"role": "user", "content": "问"}])
    assert not isinstance(err.value, LlmUnavailable) and endpoint in str(err.value)
    assert counter.requests == 1
    counter.reset()
    counter.fail_with = [401]
    with pytest.raises(ConfigError, match="KGQA_LLM__API_KEY"):
        client.complete([{"role": "user", "content": "问"}])
    assert counter.requests == 1
    # A failed request in a batch is that slot's error; the rest are answered.
    counter.reset()
    counter.fail_with = [400]
    results = ChatClient(_config(endpoint, None, concurrency=1)).complete_many(
        [ChatRequest([{"role": "user", "content": f"问{i}"}]) for i in range(3)]
    )
    assert isinstance(results[0], LlmError) and all(r.text for r in results[1:])


def test_a_closed_port_ends_in_a_clear_error_after_the_retries(snapshot, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    client = ChatClient(_config(url, tmp_path, max_retries=2, backoff_s=0.05))
    start = time.monotonic()
    with pytest.raises(LlmUnavailable, match="after 3 attempts") as err:
        client.complete([{"role": "user", "content": "存货如何计量？"}])
    assert url in str(err.value) and "start the model server" in str(err.value)
    assert time.monotonic() - start >= 0.05 + 0.1
    assert client.usage.requests == 3 and client.usage.failures == 1
    # A build does not turn a dead endpoint into thousands of rejections: it stops, and the
    # queued requests are not sent.
    one_at_a_time = ChatClient(_config(url, None, max_retries=0, concurrency=1))
    with pytest.raises(LlmUnavailable):
        LlmGenerator(one_at_a_time).generate(snapshot, _targets(6))
    assert one_at_a_time.usage.requests == 1 and one_at_a_time.usage.failures == 1
    assert issubclass(LlmEndpointConfigError, ConfigError)  # wrong key/URL/model: the CLI's config exit code


def _plant(generator: LlmGenerator, snapshot, target: LlmTarget, sample: int, reply: dict) -> None:
    """Store a well-formed reply where a previous run with a real model would have left it."""
    messages = generator.messages_for(target, snapshot)
    key = generator.client.key(ChatRequest(messages, sample))
    text = "```json\n" + json.dumps(reply, ensure_ascii=False) + "\n```"
    generator.client.cache.put(key, {"text": text, "prompt_tokens": 500, "completion_tokens": 40})


def test_pairs_are_built_from_a_well_formed_reply_and_regenerated_with_another_sample(
    endpoint, counter, snapshot, tmp_path
):
    from kg.verifier import Verifier
    from training.datagen.context import build_evidence

    generator = LlmGenerator(ChatClient(_config(endpoint, tmp_path)))
    fact = LlmTarget("fact", ("CAS-1-存货/第五条",), "进阶", "everyday", cot=True)
    never = LlmTarget("unanswerable", ("CAS-1-存货/第七条",), "基础", "formal")
    answer = (
        "分析：存货的初始计量按成本进行[[CAS-1-存货/第五条]]。\n依据：存货应当按照成本进行初始计量[[CAS-1-存货/第五条]]。\n"
        "结论：存货按照成本入账，存货成本包括采购成本、加工成本和其他成本[[CAS-1-存货/第五条]]。"
    )
    _plant(generator, snapshot, fact, 0, {"question": "我们买进来的存货一开始按什么入账？", "answer": answer})
    _plant(generator, snapshot, never, 0, {"question": "存货盘点要几个人在场？", "answer": "随便写的"})

    pairs, rejected = generator.generate(snapshot, [fact, never])
    assert rejected == [] and counter.requests == 0
    pair, refusal = pairs
    assert pair.question == "我们买进来的存货一开始按什么入账？" and pair.answer == answer
    assert pair.generator == "llm:tiny-qwen" and pair.template_id == "llm:fact"
    assert pair.gold == {"CAS-1-存货/第五条": 2}  # the clause version
    assert pair.context_ids == ["CAS-1-存货/第五条", "CAS-1-存货/第六条"]  # gold + its one section neighbour
    assert pair.cot and (pair.difficulty, pair.style) == ("进阶", "everyday")
    assert pair.extra["llm"]["cached"] and pair.extra["llm"]["prompt_tokens"] == 500
    assert Verifier().verify_against(pair.answer, build_evidence(pair, snapshot)).verified
    assert refusal.answer == REFUSAL_ANSWER and refusal.gold == {} and not refusal.answerable
    assert refusal.context_ids == ["CAS-1-存货/第七条", "CAS-1-存货/第六条", "CAS-1-存货/第八条"]  # shown, none gold
    # Stable ids: the same run gives the same pairs.
    again, _ = LlmGenerator(ChatClient(_config(endpoint, tmp_path))).generate(snapshot, [fact, never])
    assert [p.pair_id for p in again] == [pair.pair_id, refusal.pair_id]
    assert pair.pair_id != refusal.pair_id

    # A pair that failed quality checks is asked again with another sample index: a cache miss,
    # one real request, and the tiny model's garbage gives no pair.
    assert generator.regenerate(pair, snapshot, attempt=1) is None
    assert counter.requests == 1
    assert generator.regenerate(pair, snapshot, attempt=1) is None
    assert counter.requests == 1  # the same attempt is cached
    _plant(generator, snapshot, fact, 2, {"question": "存货按什么初始计量？", "answer": "按成本[[CAS-1-存货/第五条]]。"})
    redone = generator.regenerate(pair, snapshot, attempt=2)
    assert redone is not None and counter.requests == 1
    assert redone.question == "存货按什么初始计量？" and redone.pair_id != pair.pair_id
    assert redone.extra["llm"]["attempt"] == 2 and redone.extra["llm"]["regenerated_from"] == pair.pair_id


def test_judge_and_paraphrases_against_the_tiny_model(endpoint, counter, snapshot, tmp_path):
    client = ChatClient(_config(endpoint, tmp_path))
    generator = LlmGenerator(client)
    fact = LlmTarget("fact", ("CAS-1-存货/第五条",))
    _plant(generator, snapshot, fact, 0, {"question": "存货按什么初始计量？", "answer": "按成本[[CAS-1-存货/第五条]]。"})
    (pair,), _ = generator.generate(snapshot, [fact])

    judge = LlmJudge(client)
    score, reason = judge.judge(pair, snapshot)
    assert score is None and "no 1-5 score" in reason  # garbage is no verdict, not a guess
    assert counter.requests == 1
    assert judge.judge_many([pair, pair], snapshot) == [(None, reason)] * 2
    assert counter.requests == 1  # judged greedily, so the cache answers
    key = client.key(ChatRequest(judge_messages(pair, snapshot), 0, temperature=0.0, max_tokens=MAX_TOKENS))
    client.cache.put(key, {"text": '{"score": 4, "reason": "有依据"}'})
    assert judge.judge(pair, snapshot) == (4.0, "有依据")

    paraphrases = LlmParaphraser(client).paraphrase("存货应当按照什么进行初始计量？", 3)
    assert isinstance(paraphrases, list) and len(paraphrases) <= 3
    assert "存货应当按照什么进行初始计量？" not in paraphrases
    assert counter.requests == 2
