"""LoRA SFT with TRL on the tiny base: real training on a hand-built chat dataset of real clauses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from kg.citations import format_marker
from kg.prompting import ContextClause, build_system_prompt
from kgqa.errors import ConfigError
from training.run_artifacts import read_loss_csv
from training.sft import SftRunner, load_chat_split
from training.sft_config import SftConfig

CLAUSE_RE = re.compile(r"^\s*(第[一二三四五六七八九十百]+条)\s*(.+)$")
SOURCES = {
    "CAS-1-存货": "standards/企业会计准则第1号——存货（2006）.md",
    "VAT": "laws/增值税暂行条例(2017-11-19).md",
}


def corpus_clauses(corpus_dir: Path, limit: int = 44) -> list[ContextClause]:
    """Numbered clauses (第N条 + the paragraph) of two real corpus files."""
    clauses = []
    for doc_id, rel in SOURCES.items():
        text = (corpus_dir / rel).read_text(encoding="utf-8").lstrip("\ufeff")
        title = text.splitlines()[0].lstrip("# ").strip()
        for line in text.splitlines():
            m = CLAUSE_RE.match(line.replace("\u3000", " "))
            if m and len(m.group(2)) > 12:
                number, body = m.group(1), m.group(2).strip()[:160]
                clauses.append(ContextClause(f"{doc_id}/{number}", title, number, body))
    return clauses[:limit]


def chat_record(clause: ContextClause, split: str) -> dict:
    answer = f"根据{clause.number}：{clause.text.rstrip('。')}{format_marker(clause.clause_id)}。"
    question = f"《{clause.doc_title}》{clause.number}是怎么规定的？"
    return {
        "messages": [
            {"role": "system", "content": build_system_prompt([clause])},
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ],
        "id": f"pair-{clause.clause_id}",
        "question": question,
        "reference": answer,
        "qtype": "clause_content",
        "answerable": True,
        "gold_clause_ids": [clause.clause_id],
        "graph_version": 7,
        "split": split,
    }


def write_dataset(root: Path, clauses: list[ContextClause], n_val: int = 6) -> Path:
    """A dataset folder in the issue-4 layout (manifest + chat splits)."""
    (root / "chat").mkdir(parents=True)
    train, val = clauses[n_val:], clauses[:n_val]
    for name, part in (("train", train), ("val", val)):
        with (root / "chat" / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            for clause in part:
                fh.write(json.dumps(chat_record(clause, name), ensure_ascii=False) + "\n")
    manifest = {"graph_version": 7, "dataset_hash": "sha256:test-dataset", "counts": {"train": len(train)}}
    (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root


def tiny_config(**overrides) -> SftConfig:
    """Settings under which the random tiny base visibly learns in seconds."""
    base = dict(
        learning_rate=5e-3,
        lr_scheduler_type="constant",
        warmup_ratio=0.0,
        target_modules="all-linear",
        lora_dropout=0.0,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        gradient_accumulation_steps=1,
        max_length=1024,
        max_steps=24,
        eval_steps=8,
        save_steps=8,
        logging_steps=4,
        seed=3,
    )
    return SftConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory, corpus_dir) -> Path:
    clauses = corpus_clauses(corpus_dir)
    assert len(clauses) >= 40
    return write_dataset(tmp_path_factory.mktemp("dataset"), clauses)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir, dataset_dir):
    out = tmp_path_factory.mktemp("runs") / "sft"
    result = SftRunner(tiny_config(), device="cpu", progress=False).run(tiny_model_dir, dataset_dir, out)
    return result


def test_run_folder_is_complete_and_loadable_by_peft(run, tiny_model_dir):
    from peft import PeftModel

    names = {p.name for p in run.run_dir.iterdir()}
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "sft_config.yaml", "provenance.json", "loss.csv", "loss.png", "metrics.json", "checkpoints"):
        assert name in names, name
    assert "config.json" not in names  # an adapter folder, not a full model
    adapter_cfg = json.loads((run.run_dir / "adapter_config.json").read_text())
    assert adapter_cfg["r"] == 16 and adapter_cfg["lora_alpha"] == 32 and adapter_cfg["peft_type"] == "LORA"
    adapted = {name.rsplit(".", 1)[-1] for name in adapter_cfg["target_modules"]}  # all-linear: full paths
    assert adapted >= {"q_proj", "k_proj", "v_proj", "o_proj", "down_proj"} and "lm_head" not in adapted

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True)
    model = PeftModel.from_pretrained(base, run.run_dir)
    tok = AutoTokenizer.from_pretrained(run.run_dir)
    batch = tok.apply_chat_template(
        [{"role": "user", "content": "存货如何计量？"}], add_generation_prompt=True, return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape[1] == batch["input_ids"].shape[1] + 4
    # the saved tokenizer keeps the base's template (serving renders prompts with it)
    assert tok.chat_template == AutoTokenizer.from_pretrained(tiny_model_dir).chat_template

    prov = json.loads((run.run_dir / "provenance.json").read_text())
    assert prov["dataset"]["graph_version"] == 7 and prov["dataset"]["dataset_hash"] == "sha256:test-dataset"
    assert (prov["dataset"]["train_records"], prov["dataset"]["val_records"]) == (38, 6)
    assert prov["base"]["path"] == str(Path(tiny_model_dir).resolve()) and len(prov["base"]["config_sha256"]) == 64
    assert {"torch", "transformers", "trl", "peft"} <= set(prov["versions"])
    resolved = SftConfig.load(run.run_dir / "sft_config.yaml")
    assert resolved.precision == "fp32" and resolved.gradient_checkpointing is False


def test_train_loss_decreases_and_eval_runs(run):
    rows = read_loss_csv(run.run_dir / "loss.csv")
    train = [r.values["train_loss"] for r in rows if r.values.get("train_loss") is not None]
    evals = [(r.step, r.values["eval_loss"]) for r in rows if r.values.get("eval_loss") is not None]
    # a random base learns slowly through LoRA (the pretrained base is what make train uses), but it learns
    assert len(train) >= 5 and train[-1] < train[0] - 0.25, train
    assert [s for s, _ in evals][:3] == [8, 16, 24]
    assert evals[-1][1] < evals[0][1], evals
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 24 and metrics["steps_per_second"] > 0 and metrics["tokens_per_second"] > 0
    assert metrics["peak_rss_mb"] > 100 and metrics["eval_loss"] == pytest.approx(run.eval_loss)
    assert metrics["best_eval_loss"] == pytest.approx(min(v for _, v in evals), rel=1e-3)
    assert (run.run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_base_weights_frozen_and_lora_weights_changed(run, tiny_model_dir):
    adapter = load_file(run.run_dir / "adapter_model.safetensors")
    lora_b = [t for k, t in adapter.items() if "lora_B" in k]
    assert lora_b and all(k.startswith("base_model.model.") for k in adapter)
    assert not any("embed_tokens" in k or "layernorm" in k for k in adapter)  # only LoRA weights are saved
    assert any(t.abs().sum() > 0 for t in lora_b)  # lora_B starts at zero: non-zero means it learnt
    base_before = load_file(Path(tiny_model_dir) / "model.safetensors")
    base_after = AutoModelForCausalLM.from_pretrained(tiny_model_dir, local_files_only=True).state_dict()
    for name, tensor in base_before.items():
        assert torch.equal(tensor, base_after[name]), name  # training never wrote into the base


def test_loss_is_on_assistant_tokens_only(tiny_model_dir, dataset_dir, tmp_path):
    runner = SftRunner(tiny_config(), device="cpu", progress=False)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    train = load_chat_split(dataset_dir / "chat" / "train.jsonl")
    trainer = runner.build_trainer(model, tok, train, train[:2], tmp_path / "run")
    for param_name, param in trainer.model.named_parameters():
        assert param.requires_grad == ("lora_" in param_name), param_name
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    for i in range(3):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        kept = ids[labels != -100].tolist()
        answer = train[i]["messages"][-1]["content"]
        assert tok.decode(kept) == answer + "<|im_end|>"
        masked = tok.decode(ids[(labels == -100) & (batch["attention_mask"][i] == 1)].tolist())
        assert "<|im_start|>system" in masked and train[i]["messages"][1]["content"] in masked


def test_checkpoint_and_resume(tiny_model_dir, dataset_dir, tmp_path):
    out = tmp_path / "run"
    first = SftRunner(tiny_config(max_steps=8, eval_steps=4, save_steps=4), device="cpu", progress=False)
    first.run(tiny_model_dir, dataset_dir, out)
    assert (out / "checkpoints" / "checkpoint-8").is_dir()
    with pytest.raises(ConfigError, match="already holds an SFT run"):
        first.run(tiny_model_dir, dataset_dir, out)
    second = SftRunner(tiny_config(max_steps=12, eval_steps=4, save_steps=4), device="cpu", progress=False)
    result = second.run(tiny_model_dir, dataset_dir, out, resume=True)
    assert result.resumed_from.endswith("checkpoint-8") and result.steps == 12
    rows = read_loss_csv(out / "loss.csv")
    assert {4, 8, 12} <= {r.step for r in rows if r.values.get("eval_loss") is not None}  # history carried over


def test_bad_inputs_name_the_path(tiny_model_dir, dataset_dir, tmp_path):
    runner = SftRunner(tiny_config(), device="cpu", progress=False)
    with pytest.raises(ConfigError, match="manifest.json"):
        runner.run(tiny_model_dir, tmp_path, tmp_path / "out")
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"chat/train\.jsonl: dataset file not found"):
        runner.run(tiny_model_dir, tmp_path, tmp_path / "out")
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "train.jsonl").write_text("")
    (tmp_path / "chat" / "val.jsonl").write_text((dataset_dir / "chat" / "val.jsonl").read_text())
    with pytest.raises(ConfigError, match=r"train\.jsonl: no training records"):
        runner.run(tiny_model_dir, tmp_path, tmp_path / "out")
    (tmp_path / "chat" / "train.jsonl").write_text('{"messages": [{"role": "user", "content": "x"}]}\n')
    with pytest.raises(ConfigError, match=r"train\.jsonl:1: the last message must be the assistant"):
        runner.run(tiny_model_dir, tmp_path, tmp_path / "out")
    with pytest.raises(ConfigError, match="not a model directory"):
        runner.run(tmp_path, dataset_dir, tmp_path / "out")


def test_config_load_names_the_file_and_resolves_per_device(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("lora_r: 0\nlearnig_rate: 1\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid SFT config: lora_r.*learnig_rate"):
        SftConfig.load(bad)
    with pytest.raises(ConfigError, match=r"missing\.yaml: SFT config file not found"):
        SftConfig.load(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="multiple of eval_steps"):
        SftConfig.load(_write(tmp_path / "c.json", '{"eval_steps": 30, "save_steps": 50}'))
    default = SftConfig()
    assert (default.lora_r, default.lora_alpha, default.lora_dropout) == (16, 32, 0.05)
    assert default.target_modules == ["q_proj", "k_proj", "v_proj"] and default.learning_rate == 3e-5
    assert default.assistant_only_loss and default.max_length == 1024 and default.gradient_accumulation_steps == 4
    gpu, cpu = default.resolve("cuda:0"), default.resolve("cpu")
    assert (gpu.precision, gpu.gradient_checkpointing) == ("bf16", True)
    assert (cpu.precision, cpu.gradient_checkpointing) == ("fp32", False)
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        SftConfig(precision="bf16").resolve("cpu")
    shipped = Path(__file__).resolve().parents[2] / "training" / "configs"
    assert SftConfig.load(shipped / "sft.yaml") == default
    assert SftConfig.load(shipped / "sft-tiny.yaml").learning_rate > default.learning_rate


def test_real_qwen_template_without_markers_is_patched_or_refused(tiny_model_dir, tmp_path):
    from trl.chat_template_utils import has_generation_markers, qwen2_5_chat_template

    from training.sft import training_chat_template

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert training_chat_template(tok, SftConfig(), tiny_model_dir) is None  # ours has markers already
    tok.chat_template = qwen2_5_chat_template  # a real Qwen2.5 template: TRL ships the patched version
    patched = training_chat_template(tok, SftConfig(), tiny_model_dir)
    assert patched and has_generation_markers(patched)
    tok.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ConfigError, match="chat_template_path"):
        training_chat_template(tok, SftConfig(), tiny_model_dir)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_bf16_steps(tiny_model_dir, dataset_dir, tmp_path):
    result = SftRunner(tiny_config(max_steps=8, eval_steps=4, save_steps=4), device="cuda", progress=False).run(
        tiny_model_dir, dataset_dir, tmp_path / "gpu-run"
    )
    metrics = result.metrics
    assert metrics["precision"] == "bf16" and metrics["peak_cuda_mb"] > 0 and result.steps == 8
    assert SftConfig.load(tmp_path / "gpu-run" / "sft_config.yaml").gradient_checkpointing is True
    assert result.eval_loss is not None and result.eval_loss == result.eval_loss  # finite, not NaN


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_resume_passes_over_a_checkpoint_the_kill_left_half_written(tmp_path):
    """A worker killed while the Trainer saves leaves checkpoint-N without trainer_state.json."""
    import json

    from training.sft import last_complete_checkpoint

    ckpts = tmp_path / "checkpoints"
    assert last_complete_checkpoint(ckpts) is None
    for step in (2, 4, 10):
        (ckpts / f"checkpoint-{step}").mkdir(parents=True)
    (ckpts / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (ckpts / "checkpoint-4" / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    (ckpts / "checkpoint-10" / "adapter_model.safetensors").write_bytes(b"partial")  # killed here
    assert last_complete_checkpoint(ckpts) == str(ckpts / "checkpoint-4")
    (ckpts / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": ')  # cut mid-write
    assert last_complete_checkpoint(ckpts) == str(ckpts / "checkpoint-2")
