"""The one JSONL reader of training: datasets, GRPO prompts and probes, eval predictions."""

from __future__ import annotations

import pytest

from kgqa.errors import ConfigError
from training.evaluate import read_predictions, read_records
from training.grpo_prompts import load_prompts
from training.run_artifacts import iter_jsonl, read_jsonl
from training.sft import load_chat_split


def test_lines_are_numbered_and_blank_ones_skipped(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 2}\n', encoding="utf-8")
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, {"a": 2})]
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert read_jsonl(tmp_path / "absent.jsonl") == []


@pytest.mark.parametrize(
    "reader",
    [read_jsonl, load_chat_split, load_prompts, read_records, lambda p: read_predictions(p.parent)],
    ids=["read_jsonl", "sft", "grpo", "eval", "predictions"],
)
def test_every_reader_names_the_file_and_line_of_a_bad_line(tmp_path, reader):
    path = tmp_path / "predictions.jsonl"
    path.write_text('\n{"messages": [\n{"messages": []}\n', encoding="utf-8")  # blank, then broken
    with pytest.raises(ConfigError, match=r"predictions\.jsonl:2: invalid JSON"):
        reader(path)


def test_an_unreadable_file_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        list(iter_jsonl(tmp_path))  # a folder, not a file
