"""Chunking long clauses at Chinese sentence ends."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingest.chunking import chunk_text, split_text
from ingest.config import ChunkConfig

SENTENCE_END = re.compile(r"[。！？；;!?\n][”’」』）)]*$")
GUIDE = "standards/《企业会计准则第14号——收入》应用指南（2018）.md"


@pytest.fixture(scope="module")
def guide_text(corpus_dir: Path) -> str:
    return (corpus_dir / GUIDE).read_text(encoding="utf-8-sig")


def test_short_clause_gets_no_chunks() -> None:
    text = "第一条 为了规范会计行为，制定本法。"
    assert chunk_text("会计法/第一条", text, ChunkConfig()) == []
    exactly_max = "甲" * 799 + "。"
    assert chunk_text("X/1", exactly_max, ChunkConfig(max_chars=800)) == []


def test_real_long_text_is_cut_at_sentence_ends(guide_text: str) -> None:
    config = ChunkConfig()
    text = guide_text[2000:20000]
    chunks = chunk_text("CAS-14-收入-应用指南/§4.2", text, config)
    assert len(chunks) >= len(text) // config.max_chars
    assert "".join(c.text for c in chunks) == text
    assert all(len(c.text) <= config.max_chars for c in chunks)
    assert all(SENTENCE_END.search(c.text) for c in chunks[:-1])
    assert all(len(c.text) >= config.min_chars for c in chunks)
    # the pieces aim at the target, not at the maximum
    mean = sum(len(c.text) for c in chunks) / len(chunks)
    assert config.min_chars < mean <= config.target_chars
    assert [c.ord for c in chunks] == list(range(len(chunks)))
    assert {c.clause_id for c in chunks} == {"CAS-14-收入-应用指南/§4.2"}
    assert chunks[2].chunk_id == "CAS-14-收入-应用指南/§4.2:2"
    assert chunk_text("CAS-14-收入-应用指南/§4.2", text, config) == chunks  # deterministic


def test_sentence_that_fits_max_is_never_cut() -> None:
    config = ChunkConfig(target_chars=500, min_chars=100, max_chars=800)
    long_sentence = (
        "企业应当" + "按照合同约定的条款，" * 60 + "确认收入。"
    )  # ~610 chars: above target, within max
    short = "本条所称客户，是指与企业订立合同的一方。" * 15
    text = short + long_sentence + short
    pieces = split_text(text, config)
    assert "".join(pieces) == text
    assert any(long_sentence in p for p in pieces)
    assert all(len(p) <= config.max_chars for p in pieces)


def test_oversized_sentence_is_cut_at_commas_then_characters() -> None:
    config = ChunkConfig(target_chars=100, min_chars=20, max_chars=150)
    sentence = "合同各方已批准该合同并承诺将履行各自义务，" * 30 + "完。"
    pieces = split_text(sentence, config)
    assert "".join(pieces) == sentence
    assert len(pieces) > 1 and all(len(p) <= 150 for p in pieces)
    assert all(p.endswith("，") for p in pieces[:-1])
    no_punctuation = "甲" * 1000
    pieces = split_text(no_punctuation, config)
    assert "".join(pieces) == no_punctuation and all(len(p) <= 150 for p in pieces)


def test_small_trailing_piece_is_merged_into_its_neighbour() -> None:
    config = ChunkConfig(target_chars=100, min_chars=30, max_chars=150)
    text = "甲" * 95 + "。" + "乙" * 95 + "。" + "丙丙。"
    pieces = split_text(text, config)
    assert pieces == ["甲" * 95 + "。", "乙" * 95 + "。" + "丙丙。"]
