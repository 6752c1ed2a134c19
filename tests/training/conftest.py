"""Fixtures of the training tests: the corpus texts and a tiny Qwen built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_CORPUS = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")


@pytest.fixture(scope="session")
def tiny_corpus_texts(corpus_dir) -> list[str]:
    return [(corpus_dir / name).read_text(encoding="utf-8") for name in TINY_CORPUS]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_corpus_texts) -> Path:
    """A tiny random Qwen2 with a tokenizer trained on two corpus files (vocab 2000)."""
    from training.tiny_base import build_tiny_base

    out = tmp_path_factory.getbasetemp() / "tiny-qwen"
    if not (out / "model.safetensors").is_file():
        build_tiny_base(out, tiny_corpus_texts, seed=0, vocab_size=2000)
    return out
