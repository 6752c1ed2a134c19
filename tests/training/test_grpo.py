"""GRPO on the tiny Qwen from an SFT-like adapter, with prompts built from real corpus clauses.

One short run (module fixture) is read several ways: the trainer's own log history and
rewards.csv (every component computed, probes ranked), completions.jsonl (what the policy was
rewarded for), the saved adapter (changed, and started from the SFT adapter), the base weights
(frozen) and the run records (provenance, metrics).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from test_metrics import VAT, read_context

from kg.prompting import REFUSAL_ANSWER, ContextClause, build_messages
from kgqa.errors import ConfigError
from training.grpo import GrpoRunner
from training.grpo_config import GrpoConfig
from training.grpo_prompts import balance_unanswerable, load_prompts
from training.rewards import COMPONENTS

TINY_CONFIG = Path(__file__).resolve().parents[2] / "training" / "configs" / "grpo-tiny.yaml"
VAT12 = "VAT-REG/第十二条"
FAITHFUL = f"小规模纳税人增值税征收率为3%[[{VAT12}]]。"
INVENTED = "小规模纳税人增值税征收率为3%[[VAT-REG/第九十九条]]。"
WRONG_AMOUNT = f"小规模纳税人增值税征收率为5%[[{VAT12}]]。"


def _grpo_record(rid: str, question: str, reference: str, contexts: list[dict], gold: list[str], answerable: bool):
    shown = [ContextClause(c["clause_id"], c["doc_title"], c["number"], c["text"]) for c in contexts]
    return {"prompt": build_messages(question, shown), "id": rid, "question": question, "reference": reference,
            "answerable": answerable, "cot": False, "gold_clause_ids": gold, "contexts": contexts}  # fmt: skip


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def dataset_dir(corpus_dir, tmp_path_factory) -> Path:
    """DATASET_DIR with manifest.json and grpo/prompts.jsonl built by hand from real clauses; probes beside."""
    vat12 = read_context(corpus_dir / VAT, "VAT-REG", "第十二条")
    vat24 = read_context(corpus_dir / VAT, "VAT-REG", "第二十四条")
    rate = _grpo_record("rate", "小规模纳税人的增值税征收率是多少？", FAITHFUL, [vat24, vat12], [VAT12], True)
    unanswerable = _grpo_record("u", "员工出差的住宿费标准是多少？", REFUSAL_ANSWER, [vat24], [], False)
    root = tmp_path_factory.mktemp("grpo-data")
    (root / "manifest.json").write_text(json.dumps({"graph_version": 17, "dataset_hash": "abc123"}), encoding="utf-8")
    _write_jsonl(root / "grpo" / "prompts.jsonl", [rate, unanswerable])
    probes = [
        {**rate, "completion": FAITHFUL, "label": "faithful"},
        {**rate, "completion": INVENTED, "label": "invented_id"},
        {**rate, "completion": WRONG_AMOUNT, "label": "wrong_amount"},
        {**unanswerable, "completion": REFUSAL_ANSWER, "label": "refusal"},
    ]
    _write_jsonl(root / "probes.jsonl", probes)
    return root


@pytest.fixture(scope="module")
def sft_run(tiny_model_dir, tmp_path_factory) -> Path:
    """An SFT-like run folder: a LoRA adapter r=16/alpha=32 on q/k/v with non-zero (random) weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("sft-run")
    torch.manual_seed(3)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj"],
                      init_lora_weights=False, task_type="CAUSAL_LM")  # fmt: skip
    get_peft_model(base, lora).save_pretrained(out)
    (out / "provenance.json").write_text(json.dumps({"method": "sft", "seed": 3}), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def run(tiny_model_dir, sft_run, dataset_dir, tmp_path_factory):
    config = GrpoConfig.load(TINY_CONFIG).with_overrides(
        max_steps=3,
        probes=str(dataset_dir / "probes.jsonl"),
        unanswerable_draw_share=0.75,  # the one unanswerable record drawn as 3 of 4 rows
    )
    runner = GrpoRunner(config, device="cpu", progress=False)
    out = tmp_path_factory.mktemp("grpo-run") / "run"
    prompts = dataset_dir / "grpo" / "prompts.jsonl"
    result = runner.run(tiny_model_dir, sft_run, prompts, out, eval_prompts=prompts)
    return runner, result, out


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_trainer_logs_every_reward_component(run):
    runner, result, out = run
    steps = [e for e in runner.trainer.state.log_history if "reward" in e]
    assert len(steps) == result.steps == 3
    for entry in steps:
        for name in COMPONENTS:
            assert f"rewards/{name}/mean" in entry and f"rewards/{name}/std" in entry
        assert "kl" in entry and "completions/mean_length" in entry
        assert entry["rewards/citation/mean"] is not None
    rows = _csv(out / "rewards.csv")
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert {"reward", "reward_std", "kl", "completion_length", "citation_mean", "hallucination_std"} <= set(rows[0])
    for path in ("rewards.png", "loss.csv", "loss.png"):
        assert (out / path).stat().st_size > 0


def test_trainer_ranks_probes_faithful_above_invented_and_wrong_amount(run):
    """In the trainer's own logs: the same reward functions it trains with score the probes."""
    runner, _, out = run
    probe_steps = [e for e in runner.trainer.state.log_history if "probe/faithful/reward" in e]
    assert len(probe_steps) == 3
    for e in probe_steps:
        assert e["probe/faithful/reward"] > e["probe/wrong_amount/reward"] > e["probe/invented_id/reward"]
        assert e["probe/refusal/reward"] > 0  # a correct refusal is rewarded
    for row in _csv(out / "rewards.csv"):
        assert float(row["probe_faithful"]) > float(row["probe_invented_id"])
        assert float(row["probe_faithful"]) > float(row["probe_wrong_amount"])


def test_completions_are_recorded_with_what_the_trainer_logged(run):
    runner, _, out = run
    lines = [json.loads(x) for x in (out / "completions.jsonl").read_text(encoding="utf-8").splitlines()]
    policy = [x for x in lines if x["source"] == "policy"]
    assert len(policy) == 3 * 4  # 3 steps x (1 prompt x 4 generations)
    assert {x["source"] for x in lines} == {"policy", "probe", "eval"}
    assert sum(x["source"] == "eval" for x in lines) == 2 * 2 * 4  # before and after x 2 prompts x 4
    history = {e["step"]: e for e in runner.trainer.state.log_history if "reward" in e}
    weights = runner.trainer.reward_weights.tolist()
    for step, entry in history.items():
        batch = [x for x in policy if x["step"] == step - 1]  # rewards are computed before the step ends
        assert len(batch) == 4
        for name in COMPONENTS:
            values = [x["rewards"][name] for x in batch if x["rewards"][name] is not None]
            logged = entry[f"rewards/{name}/mean"]
            if values:
                assert logged == pytest.approx(sum(values) / len(values), abs=1e-5)
            else:
                assert logged is None
        for x in batch:
            expected = sum(w * (x["rewards"][c] or 0.0) for w, c in zip(weights, COMPONENTS, strict=True))
            assert x["total"] == pytest.approx(expected)


def test_hand_written_completions_through_the_trainers_reward_functions(run, dataset_dir):
    runner, _, _ = run
    trainer = runner.trainer
    assert all(f.suite is runner.suite for f in trainer.reward_funcs)
    row = load_prompts(dataset_dir / "grpo" / "prompts.jsonl")[0]
    columns = {k: [row[k]] * 3 for k in row if k != "prompt"}
    completions = [[{"role": "assistant", "content": c}] for c in (FAITHFUL, INVENTED, WRONG_AMOUNT)]
    per_func = [f(prompts=[row["prompt"]] * 3, completions=completions, completion_ids=[[0] * 20] * 3, **columns)
                for f in trainer.reward_funcs]  # fmt: skip
    weights = trainer.reward_weights.tolist()
    totals = [sum(w * (fn[i] or 0.0) for w, fn in zip(weights, per_func, strict=True)) for i in range(3)]
    faithful, invented, wrong = totals
    assert faithful > wrong and faithful > invented
    assert per_func[COMPONENTS.index("citation")] == [1.0, -1.0, 1.0]
    assert per_func[COMPONENTS.index("hallucination")][0] == 0.0
    assert per_func[COMPONENTS.index("hallucination")][2] == -0.5


def test_adapter_starts_from_sft_changes_and_base_stays_frozen(run, sft_run, tiny_model_dir):
    runner, _, out = run
    sft = load_file(sft_run / "adapter_model.safetensors")
    grpo = load_file(out / "adapter_model.safetensors")
    assert set(grpo) == set(sft)  # same adapter shape (r=16 on q/k/v), no "ref" copy saved with it
    assert not (out / "ref").exists()
    diffs = {k: (grpo[k] - sft[k]).abs().max().item() for k in sft}
    assert max(diffs.values()) > 0  # trained
    scale = max(t.abs().max().item() for t in sft.values())
    # 3 steps at lr 1e-4 move a weight by ~3e-4: far less than the SFT weights themselves (a fresh
    # init would differ from them by their own magnitude)
    assert max(diffs.values()) < 0.02 < scale
    base = load_file(tiny_model_dir / "model.safetensors")
    model = runner.trainer.model
    for name, param in model.named_parameters():
        if "lora_" in name:
            continue
        assert not param.requires_grad, name
        key = name.removeprefix("base_model.model.").replace(".base_layer", "")
        if key in base:
            assert torch.equal(param.detach().cpu(), base[key]), name
    assert any("lora_" in n and p.requires_grad for n, p in model.named_parameters())
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 16


def test_run_records(run, sft_run, dataset_dir):
    _, result, out = run
    prov = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert prov["dataset"] == {"graph_version": 17, "dataset_hash": "abc123"}
    assert prov["parent"]["path"] == str(sft_run.resolve())
    assert prov["parent"]["provenance"] == {"method": "sft", "seed": 3}
    assert len(prov["prompts"]["sha256"]) == 64 and prov["prompts"]["records"] == 2
    # the draw share the run trained with, and the rows it drew from: the answerable record and
    # the unanswerable one three times (itself and two copies)
    assert prov["prompts"]["unanswerable_draw_share"] == 0.75 and prov["prompts"]["rows_drawn_from"] == 4
    assert prov["rewards"]["evidence"] == "contexts"
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["steps"] == 3 and metrics["steps_per_second"] > 0 and metrics["peak_rss_mb"] > 0
    assert metrics["batches_scored"] >= 3 and metrics["graph_reads"] == 0
    # held-out prompts scored with the same rewards before and after training, per component
    assert metrics["eval"]["prompts"] == 2
    for when in ("before", "after"):
        assert math.isfinite(metrics["eval"][when]["reward"])
        logged = set(metrics["eval"][when])
        assert {f"rewards/{c}/mean" for c in ("citation", "hallucination", "abstention")} <= logged
    assert math.isfinite(result.reward_first) and math.isfinite(result.reward_last)
    saved = GrpoConfig.load(out / "grpo_config.yaml")
    assert saved.beta == 0.05 and saved.rewards.length_limit_tokens == 48 and saved.use_vllm is False
    assert (out / "tokenizer.json").is_file()


def test_finished_run_folder_is_not_overwritten(run, tiny_model_dir, sft_run, dataset_dir):
    _, _, out = run
    with pytest.raises(ConfigError, match="already holds a finished run"):
        GrpoRunner(GrpoConfig.load(TINY_CONFIG), device="cpu").run(
            tiny_model_dir, sft_run, dataset_dir / "grpo" / "prompts.jsonl", out
        )


# --- config and inputs, no training -------------------------------------------------------------------


def test_defaults_are_the_briefs():
    c = GrpoConfig.load()
    assert (c.learning_rate, c.beta, c.lora_r, c.lora_alpha, c.target_modules) == (
        1e-6, 0.05, 16, 32, ["q_proj", "k_proj", "v_proj"])  # fmt: skip
    assert c == GrpoConfig()  # the YAML documents the defaults, it does not change them
    cpu = c.resolve("cpu")
    assert cpu.precision == "fp32" and cpu.use_vllm is False and cpu.gradient_checkpointing is False
    assert cpu.rewards.length_limit_tokens == c.max_completion_length


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="multiple of num_generations"):
        GrpoConfig().with_overrides(per_device_train_batch_size=3, gradient_accumulation_steps=1)
    with pytest.raises(ConfigError, match="needs CUDA"):
        GrpoConfig(use_vllm=True).resolve("cpu")
    bad = tmp_path / "bad.yaml"
    bad.write_text("beta: -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bad.yaml"):
        GrpoConfig.load(bad)


def test_prompt_set_errors_name_file_and_line(tmp_path):
    path = _write_jsonl(tmp_path / "prompts.jsonl", [
        {"prompt": [{"role": "user", "content": "q"}], "reference": "a", "contexts": []},
        {"prompt": [{"role": "user", "content": "q"}], "contexts": [{"clause_id": "A/1"}], "answerable": True},
    ])  # fmt: skip
    with pytest.raises(ConfigError, match=r"prompts.jsonl:2: an answerable record needs its 'reference'"):
        load_prompts(path)
    with pytest.raises(ConfigError, match="not found"):
        load_prompts(tmp_path / "missing.jsonl")


def test_unanswerable_prompts_are_repeated_to_the_asked_share():
    rows = [{"id": f"a{i}", "answerable": True} for i in range(29)]
    rows[3:3] = [{"id": f"u{i}", "answerable": False} for i in range(7)]  # the export's ~20%

    def drawn_share(share):
        drawn = balance_unanswerable(rows, share)
        assert [r["id"] for r in drawn if r["answerable"]] == [f"a{i}" for i in range(29)]
        assert {r["id"] for r in drawn if not r["answerable"]} == {f"u{i}" for i in range(7)}
        return sum(not r["answerable"] for r in drawn) / len(drawn)

    for share in (0.25, 0.33, 0.4, 0.5, 0.75):  # not only multiples of the set's own mix
        assert abs(drawn_share(share) - share) < 0.02, share
    assert balance_unanswerable(rows, None) == rows
    assert balance_unanswerable(rows, 0.1) == rows  # below the set's own: rows are never dropped
    only = [r for r in rows if r["answerable"]]
    assert balance_unanswerable(only, 0.5) == only  # nothing to repeat
    refusals = [r for r in rows if not r["answerable"]]
    assert balance_unanswerable(refusals, 0.5) == refusals  # nothing to balance against
    with pytest.raises(ConfigError, match="unanswerable_draw_share"):
        GrpoConfig().with_overrides(unanswerable_draw_share=1.0)


def test_cli_wires_options_and_reports_a_missing_adapter(tmp_path, tiny_model_dir, dataset_dir):
    import typer
    from typer.testing import CliRunner

    from kgqa.commands.grpo import grpo_command

    app = typer.Typer()
    app.command()(grpo_command)
    args = ["--base", str(tiny_model_dir), "--adapter", str(tmp_path / "no-sft-run"), "--prompts", str(dataset_dir),
            "--out", str(tmp_path / "out"), "--config", str(TINY_CONFIG), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert "no-sft-run: no PEFT adapter here" in str(result.exception)
    assert not (tmp_path / "out").exists()  # checked before anything is written


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vllm")
def test_vllm_generation_path(tiny_model_dir, sft_run, dataset_dir, tmp_path):
    config = GrpoConfig.load(TINY_CONFIG).with_overrides(
        max_steps=2, use_vllm=True, precision="bf16", vllm_gpu_memory_utilization=0.2
    )
    runner = GrpoRunner(config, device="cuda", progress=False)
    result = runner.run(tiny_model_dir, sft_run, dataset_dir / "grpo" / "prompts.jsonl", tmp_path / "run")
    assert result.metrics["use_vllm"] is True and result.steps == 2
    assert all(f"rewards/{c}/mean" in e for e in result.log_history if "reward" in e for c in COMPONENTS)
