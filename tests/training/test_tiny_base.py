"""The tiny Qwen builder: a real Qwen2 directory, a corpus tokenizer with ChatML, deterministic."""

from __future__ import annotations

import hashlib
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM

from kgqa.errors import ConfigError
from training.tiny_base import build_tiny_base


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    return AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    return AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)


def test_loads_like_a_qwen_directory(model, tokenizer):
    assert isinstance(model, Qwen2ForCausalLM)
    config = model.config
    assert config.model_type == "qwen2"
    assert (config.hidden_size, config.num_hidden_layers) == (64, 2)
    assert (config.num_attention_heads, config.num_key_value_heads, config.intermediate_size) == (4, 2, 128)
    assert config.max_position_embeddings == 2048 and config.tie_word_embeddings
    assert model.get_input_embeddings().weight.data_ptr() == model.get_output_embeddings().weight.data_ptr()
    assert config.vocab_size == len(tokenizer) <= 2000
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.eos_token_id == [tokenizer.eos_token_id, tokenizer.pad_token_id]


def test_tokenizer_is_trained_on_the_corpus_and_byte_level(tokenizer, tiny_corpus_texts):
    sample = tiny_corpus_texts[0][200:800]
    ids = tokenizer(sample, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == sample  # lossless
    assert len(ids) < len(sample.encode("utf-8")) / 3  # merges learnt: fewer tokens than CJK chars
    unseen = "🙂 Ω 饕餮"  # never in the corpus: still encodable, byte by byte
    assert tokenizer.decode(tokenizer(unseen, add_special_tokens=False)["input_ids"]) == unseen
    # digits one by one, as Qwen does, so 2024 and 2025 share their tokens
    assert tokenizer.tokenize("2024") == ["2", "0", "2", "4"]
    for special in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        assert len(tokenizer(special, add_special_tokens=False)["input_ids"]) == 1


def test_chat_template_is_chatml_with_generation_markers(tokenizer):
    messages = [
        {"role": "system", "content": "依据条款回答。"},
        {"role": "user", "content": "存货如何计量？"},
        {"role": "assistant", "content": "按成本计量[[CAS-1-存货/第五条]]。"},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<|im_start|>system\n依据条款回答。<|im_end|>\n"
        "<|im_start|>user\n存货如何计量？<|im_end|>\n"
        "<|im_start|>assistant\n按成本计量[[CAS-1-存货/第五条]]。<|im_end|>\n"
    )
    prompt = tokenizer.apply_chat_template(messages[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")

    # TRL's assistant_only_loss relies on these masks: exactly the answer and its <|im_end|>
    encoded = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    ids, mask = encoded["input_ids"], encoded["assistant_masks"]
    assistant_ids = [i for i, m in zip(ids, mask, strict=True) if m]
    assert tokenizer.decode(assistant_ids) == "按成本计量[[CAS-1-存货/第五条]]。<|im_end|>"


def test_random_model_computes_a_finite_loss_and_generates(model, tokenizer):
    batch = tokenizer(["存货应当按照成本进行初始计量。"], return_tensors="pt")
    with torch.no_grad():
        loss = model(**batch, labels=batch["input_ids"]).loss.item()
    assert math.isfinite(loss) and abs(loss - math.log(len(tokenizer))) < 1.5  # untrained: ~uniform
    out = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == batch["input_ids"].shape[1] + 5


def test_same_seed_same_files_other_seed_other_weights(tmp_path, tiny_corpus_texts):
    texts = tiny_corpus_texts[:1]
    a = build_tiny_base(
        tmp_path / "a", texts, seed=7, vocab_size=600, hidden_size=32, num_heads=2, num_kv_heads=1
    )
    b = build_tiny_base(
        tmp_path / "b", texts, seed=7, vocab_size=600, hidden_size=32, num_heads=2, num_kv_heads=1
    )
    c = build_tiny_base(
        tmp_path / "c", texts, seed=8, vocab_size=600, hidden_size=32, num_heads=2, num_kv_heads=1
    )
    names = sorted(p.name for p in a.iterdir())
    assert "model.safetensors" in names and "tokenizer.json" in names
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert _sha(a / name) == _sha(b / name), name
    assert _sha(a / "model.safetensors") != _sha(c / "model.safetensors")
    assert _sha(a / "tokenizer.json") == _sha(
        c / "tokenizer.json"
    )  # the tokenizer does not depend on the seed


def test_inconsistent_sizes_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="num_heads"):
        build_tiny_base(tmp_path, ["文本"], hidden_size=30, num_heads=4)
    with pytest.raises(ConfigError, match="vocab_size"):
        build_tiny_base(tmp_path, ["文本"], vocab_size=100)
