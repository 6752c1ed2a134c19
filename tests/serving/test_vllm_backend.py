"""The vLLM backend: on a CUDA machine with vLLM, the tiny Qwen with and without a LoRA adapter."""

from __future__ import annotations

import importlib.util

import pytest

from kgqa.errors import ConfigError
from serving.backends import BackendConfig, make_backend

QUESTION = "存货应当按照什么进行初始计量？"
HAS_VLLM = importlib.util.find_spec("vllm") is not None


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


gpu = pytest.mark.skipif(not (HAS_VLLM and _cuda()), reason="needs CUDA and vLLM")


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here")
def test_without_vllm_the_backend_says_how_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match="kgqa\\[gpu\\]"):
        make_backend(BackendConfig(kind="vllm", model_path=str(tmp_path)))


@pytest.fixture(scope="module")
def vllm_backend(tiny_model_dir):
    return make_backend(
        BackendConfig(
            kind="vllm",
            model_path=str(tiny_model_dir),
            max_new_tokens=16,
            max_lora_rank=8,
            gpu_memory_utilization=0.3,
            max_model_len=2048,
        )
    )


@pytest.mark.gpu
@gpu
def test_generates_greedily_and_streams_the_same_text(vllm_backend, corpus_clauses):
    contexts = [corpus_clauses["CAS-1-存货/第五条"]]
    first = vllm_backend.generate(QUESTION, contexts)
    assert first.text and 0 < first.completion_tokens <= 16
    assert vllm_backend.generate(QUESTION, contexts).text == first.text
    assert "".join(vllm_backend.stream(QUESTION, contexts)) == first.text


@pytest.mark.gpu
@gpu
def test_lora_adapter_switches_per_request(vllm_backend, corpus_clauses, tiny_adapter_dir):
    contexts = [corpus_clauses["CAS-1-存货/第五条"]]
    base = vllm_backend.generate(QUESTION, contexts).text
    vllm_backend.load_adapter(tiny_adapter_dir, "v1")
    vllm_backend.set_adapter("v1")
    tuned = vllm_backend.generate(QUESTION, contexts)
    assert tuned.model_id.endswith("+v1") and tuned.text != base
    vllm_backend.set_adapter(None)
    assert vllm_backend.generate(QUESTION, contexts).text == base
