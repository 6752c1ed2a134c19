"""The pretrained tiny base: deterministic for a seed, lower loss after the pass, CLI and records."""

from __future__ import annotations

import hashlib
import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer
from typer.testing import CliRunner

from kgqa.commands.train import train_app
from kgqa.errors import ConfigError
from training.pretrain import PROMPT_WEIGHT, TinyBaseConfig, build_pretrained_base, effective_vocab_size
from training.run_artifacts import read_loss_csv
from training.tiny_base import read_corpus

# small enough for seconds on a shared 2-core machine, big enough to learn
SMALL = dict(vocab_size=1200, hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128,
             steps=40, seq_len=64, batch_size=8, warmup_steps=5, log_every=5)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory, tiny_corpus_texts):
    path = tmp_path_factory.mktemp("corpus") / "cas1.md"
    path.write_text(tiny_corpus_texts[0], encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory, corpus_file):
    out = tmp_path_factory.mktemp("base") / "a"
    return out, build_pretrained_base(out, [corpus_file], TinyBaseConfig(seed=5, **SMALL), progress=False)


def test_pretraining_lowers_the_loss_and_records_it(built, corpus_file):
    out, result = built
    assert result.corpus_loss_after < result.corpus_loss_before - 1.5, result
    assert result.final_loss < result.initial_loss - 1.5
    record = json.loads((out / "pretrain.json").read_text(encoding="utf-8"))
    assert record["steps"] == 40 and record["seed"] == 5 and record["corpus_files"] == [str(corpus_file)]
    assert len(record["corpus_sha256"]) == 64 and record["final_loss"] == result.final_loss
    # the prompts' wording is trained on too, and recorded apart from the corpus
    assert record["prompt_weight"] == PROMPT_WEIGHT and len(record["prompts_sha256"]) == 64
    assert record["prompt_tokens"] > 0 and record["blocks"] == record["tokens"] // SMALL["seq_len"]
    rows = read_loss_csv(out / "loss.csv")
    assert [r.step for r in rows] == list(range(5, 45, 5))
    assert rows[-1].values["train_loss"] < rows[0].values["train_loss"]
    # still a plain Qwen directory
    model = AutoModelForCausalLM.from_pretrained(out, local_files_only=True)
    tok = AutoTokenizer.from_pretrained(out, local_files_only=True)
    assert model.config.model_type == "qwen2" and model.config.vocab_size == len(tok)
    assert "{% generation %}" in tok.chat_template or "{%- generation %}" in tok.chat_template


def test_same_seed_same_weights_other_seed_differs(built, corpus_file, tmp_path):
    out, _ = built
    again = tmp_path / "b"
    build_pretrained_base(again, [corpus_file], TinyBaseConfig(seed=5, **SMALL), progress=False)
    assert _sha(again / "model.safetensors") == _sha(out / "model.safetensors")
    other = tmp_path / "c"
    build_pretrained_base(other, [corpus_file], TinyBaseConfig(seed=6, **{**SMALL, "steps": 2}), progress=False)
    assert _sha(other / "model.safetensors") != _sha(out / "model.safetensors")


def test_vocabulary_is_capped_for_small_corpora():
    small, large = ["字" * 5_000], ["字" * 500_000]
    assert effective_vocab_size(small, TinyBaseConfig()) == 259 + 600
    assert effective_vocab_size(large, TinyBaseConfig()) == 6000
    assert effective_vocab_size(small, TinyBaseConfig(vocab_per_kchar=None)) == 6000


def test_corpus_paths_folders_and_errors(tmp_path, corpus_file):
    folder = tmp_path / "c"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "b.txt").write_text("乙", encoding="utf-8")
    (folder / "a.md").write_text("\ufeff甲", encoding="utf-8")
    (folder / "skip.pdf").write_bytes(b"%PDF")
    named = read_corpus([folder, corpus_file])
    assert [n for n, _ in named] == [str(folder / "a.md"), str(folder / "sub" / "b.txt"), str(corpus_file)]
    assert named[0][1] == "甲"
    with pytest.raises(ConfigError, match="nope: corpus path not found"):
        read_corpus([tmp_path / "nope"])
    (tmp_path / "bad.md").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="bad.md: corpus file is not UTF-8"):
        read_corpus([tmp_path / "bad.md"])
    with pytest.raises(ConfigError, match="fewer than one block"):
        build_pretrained_base(tmp_path / "m", [folder], TinyBaseConfig(**SMALL), progress=False)


def test_cli_base_tiny_json(tmp_path, corpus_file):
    result = CliRunner().invoke(
        train_app, ["base-tiny", "--out", str(tmp_path / "m"), "--corpus", str(corpus_file), "--steps", "3",
                    "--seed", "1", "--json"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout[result.stdout.index("{"):])
    assert payload["steps"] == 3 and payload["seed"] == 1 and payload["corpus_files"] == [str(corpus_file)]
    assert (tmp_path / "m" / "model.safetensors").is_file() and (tmp_path / "m" / "pretrain.json").is_file()
    missing = CliRunner().invoke(train_app, ["base-tiny", "--out", str(tmp_path / "x"), "--corpus", "nope"])
    assert missing.exit_code != 0 and isinstance(missing.exception, ConfigError)


def test_the_prompts_fixed_wording_costs_few_tokens(samples_dir, tmp_path):
    """Every SFT conversation repeats the rules: on the sample manuals the base's tokenizer learns
    them as a few dozen tokens (PROMPT_WEIGHT), not as the ~180 corpus-sized pieces that made a
    conversation 342 tokens instead of 202."""
    from kg.prompting import SYSTEM_PROMPT
    from training.pretrain import prompt_texts
    from training.tiny_base import train_tokenizer

    corpus = [samples_dir / "src", samples_dir / "manuals"]
    build_pretrained_base(tmp_path / "b", corpus, TinyBaseConfig(steps=0), progress=False)
    texts = [t for _, t in read_corpus(corpus)]
    once = train_tokenizer([*texts, *prompt_texts()], effective_vocab_size(texts, TinyBaseConfig()))
    base = AutoTokenizer.from_pretrained(tmp_path / "b", local_files_only=True)
    before, after = (len(tok(SYSTEM_PROMPT)["input_ids"]) for tok in (once, base))
    assert after <= len(SYSTEM_PROMPT) // 4 < before, (before, after, len(SYSTEM_PROMPT))
