"""The transformers backend over a tiny real Qwen2 directory, with a real PEFT LoRA adapter."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kg.prompting import build_messages
from kgqa.errors import ConfigError
from serving.backends import BackendConfig, BatchBackend, ChatBackend, make_backend

QUESTION = "存货应当按照什么进行初始计量？"
MAX_NEW = 24


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return make_backend(
        BackendConfig(kind="transformers", model_path=str(tiny_model_dir), max_new_tokens=MAX_NEW)
    )


@pytest.fixture(scope="module")
def contexts(corpus_clauses):
    return [corpus_clauses["CAS-1-存货/第五条"], corpus_clauses["CAS-1-存货/第六条"]]


def test_generates_within_max_new_tokens(backend, contexts, tiny_model_dir):
    assert isinstance(backend, ChatBackend)
    generation = backend.generate(QUESTION, contexts)
    assert generation.text  # random weights: gibberish, but some
    assert 0 < generation.completion_tokens <= MAX_NEW
    assert generation.prompt_tokens > 50  # the clauses are in the prompt
    assert generation.model_id == backend.model_id == tiny_model_dir.name


def test_greedy_is_reproducible_and_equals_raw_messages(backend, contexts):
    first = backend.generate(QUESTION, contexts)
    assert backend.generate(QUESTION, contexts).text == first.text
    assert backend.generate_messages(build_messages(QUESTION, contexts)).text == first.text


def test_stream_joins_to_generate(backend, contexts):
    deltas = list(backend.stream(QUESTION, contexts))
    assert "".join(deltas) == backend.generate(QUESTION, contexts).text


def test_the_batch_api_answers_as_single_calls_do_and_scores_answers(backend, contexts, corpus_clauses):
    """The public API evaluation uses (training never touches the model object itself)."""
    assert isinstance(backend, BatchBackend)
    questions = [QUESTION, "存货的成本包括哪些？", "增值税的纳税人是谁？"]
    convs = [
        build_messages(q, contexts if i < 2 else [corpus_clauses["VAT-REG/第一条"]])
        for i, q in enumerate(questions)
    ]
    batch = backend.generate_batch(convs)  # prompts of different lengths: a left-padded batch
    single = [backend.generate_messages(c) for c in convs]
    assert [g.text for g in batch] == [g.text for g in single]
    assert [g.completion_tokens for g in batch] == [g.completion_tokens for g in single]
    assert [g.prompt_tokens for g in batch] == [g.prompt_tokens for g in single]
    assert backend.generate_batch(convs[:1], max_new_tokens=4)[0].completion_tokens <= 4
    # the model's own greedy answer is far likelier than an unrelated one of the same prompt
    own, other = backend.score_answers(
        [(convs[0], batch[0].text), (convs[0], "今天天气很好，我们去公园散步吧。")]
    )
    assert own.tokens > 1 and other.tokens > 1
    assert own.nll / own.tokens < other.nll / other.tokens


def test_a_past_deadline_returns_at_once_with_nothing(backend, contexts):
    start = time.perf_counter()
    generation = backend.generate(QUESTION, contexts, deadline=time.monotonic() - 1)
    assert generation.text == "" and generation.completion_tokens == 0
    assert list(backend.stream(QUESTION, contexts, deadline=time.monotonic() - 1)) == []
    assert time.perf_counter() - start < 0.5


def test_a_deadline_stops_a_long_generation(backend, contexts):
    messages = build_messages(QUESTION, contexts)
    start = time.perf_counter()
    generation = backend.generate_messages(messages, deadline=time.monotonic() + 0.2, max_new_tokens=1500)
    assert time.perf_counter() - start < 2.0
    assert 0 < generation.completion_tokens < 1500


def test_closing_a_stream_cancels_generation(backend, contexts):
    messages = build_messages(QUESTION, contexts)
    stream = backend.stream_messages(messages, max_new_tokens=1500)
    next(stream)
    start = time.perf_counter()
    stream.close()  # joins the generation thread, which stops after its next token
    assert time.perf_counter() - start < 1.0
    assert backend.generate(QUESTION, contexts).completion_tokens <= MAX_NEW  # still usable


def test_concurrent_requests_are_serialised_and_correct(backend, contexts):
    expected = backend.generate(QUESTION, contexts).text
    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda _: backend.generate(QUESTION, contexts).text, range(4)))
    assert texts == [expected] * 4


def test_adapters_switch_without_reloading(tiny_model_dir, tiny_adapter_dir, contexts):
    backend = make_backend(
        BackendConfig(kind="transformers", model_path=str(tiny_model_dir), max_new_tokens=MAX_NEW)
    )
    base = backend.generate(QUESTION, contexts).text
    backend.load_adapter(tiny_adapter_dir, "v1")
    assert backend.generate(QUESTION, contexts).text == base  # loaded, not active
    assert backend.model_id == tiny_model_dir.name

    backend.set_adapter("v1")
    tuned = backend.generate(QUESTION, contexts)
    assert tuned.text != base
    assert tuned.model_id == backend.model_id == f"{tiny_model_dir.name}+v1"
    assert "".join(backend.stream(QUESTION, contexts)) == tuned.text

    backend.set_adapter(None)
    assert backend.generate(QUESTION, contexts).text == base
    assert backend.model_id == tiny_model_dir.name

    with pytest.raises(ConfigError):
        backend.set_adapter("missing")
    with pytest.raises(ConfigError):
        backend.load_adapter(tiny_adapter_dir, "v1")


def test_adapter_from_config_is_active_at_start(tiny_model_dir, tiny_adapter_dir, contexts):
    config = BackendConfig(
        kind="transformers",
        model_path=str(tiny_model_dir),
        adapter_path=str(tiny_adapter_dir),
        adapter_name="v1",
        max_new_tokens=MAX_NEW,
    )
    backend = make_backend(config)
    assert backend.model_id == f"{tiny_model_dir.name}+v1"
    backend.set_adapter(None)
    base = backend.generate(QUESTION, contexts).text
    backend.set_adapter("v1")
    assert backend.generate(QUESTION, contexts).text != base


def test_a_missing_model_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not a model directory"):
        make_backend(BackendConfig(kind="transformers", model_path=str(tmp_path)))
    with pytest.raises(ConfigError, match="KGQA_BACKEND__MODEL_PATH"):
        make_backend(BackendConfig(kind="transformers"))


def test_a_failing_generation_thread_raises_in_the_consumer(backend, contexts):
    messages = build_messages(QUESTION, contexts)
    with pytest.raises(ValueError):  # transformers refuses a negative budget, inside the thread
        list(backend.stream_messages(messages, max_new_tokens=-1))
    assert backend.generate(QUESTION, contexts).completion_tokens <= MAX_NEW  # lock released
