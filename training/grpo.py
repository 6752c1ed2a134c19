"""GRPO of the SFT adapter with rewards judged by the knowledge graph (TRL ``GRPOTrainer``).

``GrpoRunner(config).run(base_dir, sft_run_dir, prompts_path, out_dir)`` loads the base, puts the
SFT run's LoRA adapter on it as the trainable starting point (``PeftModel.from_pretrained(...,
is_trainable=True)``; with ``beta > 0`` TRL copies it into a frozen ``ref`` adapter, so the KL is
measured against the SFT policy, not the bare base), samples ``num_generations`` answers per
prompt of ``DATASET_DIR/grpo/prompts.jsonl`` (read, checked and mixed by
:mod:`training.grpo_prompts`), scores them with :class:`training.rewards.RewardSuite`
and writes the run folder::

    RUN_DIR/
      adapter_config.json adapter_model.safetensors   the GRPO adapter (PEFT, at the root, as SFT's)
      tokenizer files                                 the base's tokenizer
      grpo_config.yaml     the resolved GrpoConfig
      provenance.json      base, parent SFT run, prompts sha256, graph_version + dataset_hash, versions
      rewards.csv rewards.png   per logged step: each component's mean and std, total reward, KL,
                                completion length, verifier counters, probe scores
      loss.csv loss.png    the policy loss
      completions.jsonl    every scored completion with its components and unsupported atoms
      metrics.json         steps, time, steps/s, peak memory, first/last rewards

The graph is read at most once per batch (see :mod:`training.rewards.evidence`); with
``rewards.evidence: contexts`` never during training (the prompts' contexts were read from it
when the dataset was built).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
import torch
from transformers import TrainerCallback

from kgqa.errors import ConfigError
from training.gemma_base import copy_notice
from training.generation import resolve_adapter
from training.grpo_config import GrpoConfig
from training.grpo_prompts import balance_unanswerable, load_probes, load_prompts
from training.rewards import (
    COMPONENTS,
    CompletionRecorder,
    ContextEvidence,
    GraphBatchEvidence,
    RewardSuite,
)
from training.rewards.evidence import BatchEvidenceSource
from training.run_artifacts import (
    LossRow,
    library_versions,
    peak_rss_mb,
    read_json,
    rows_from_log_history,
    sha256_file,
    write_json,
    write_loss_csv,
    write_loss_curves,
)

log = structlog.get_logger(__name__)

CHECKPOINTS = "checkpoints"
COMPLETIONS_FILE = "completions.jsonl"

# trainer log keys -> rewards.csv columns
REWARD_LOG_KEYS: dict[str, str] = {
    "reward": "reward",
    "reward_std": "reward_std",
    **{f"rewards/{c}/{stat}": f"{c}_{stat}" for c in COMPONENTS for stat in ("mean", "std")},
    "kl": "kl",
    "completions/mean_length": "completion_length",
    "completions/clipped_ratio": "clipped_ratio",
    "verifier/unsupported_atoms": "unsupported_atoms",
    "verifier/refusal_rate": "refusal_rate",
    "verifier/graph_reads": "graph_reads",
    "loss": "loss",
    "learning_rate": "lr",
}
PROBE_PREFIX = "probe/"


@dataclass
class GrpoResult:
    """What a run produced; ``metrics`` is the content of ``metrics.json``."""

    run_dir: Path
    steps: int
    reward_first: float | None
    reward_last: float | None
    metrics: dict[str, Any] = field(default_factory=dict)
    log_history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "steps": self.steps, "reward_first": self.reward_first,
                "reward_last": self.reward_last, "metrics": self.metrics}  # fmt: skip


# --- callbacks -----------------------------------------------------------------------------------


class RewardProbes(TrainerCallback):
    """Scores fixed hand-written completions with the trainer's own reward suite at each log step.

    A canary in the trainer's own logs: ``probe/<label>/reward`` (the weighted total, with the
    trainer's ``reward_weights``) must keep a faithful answer above an invented citation or a wrong
    amount whatever the policy does. The scored probes are also recorded in ``completions.jsonl``
    (``source: probe``).
    """

    def __init__(self, suite: RewardSuite, probes: tuple[list, list, list]) -> None:
        self.suite = suite
        self.records, self.completions, self.labels = probes

    def scores(self, step: int | None) -> dict[str, float]:
        scored = self.suite.score(self.records, self.completions, step=step, source="probe")
        by_label: dict[str, list[float]] = {}
        for label, s in zip(self.labels, scored, strict=True):
            by_label.setdefault(label, []).append(s.total)
        return {f"{PROBE_PREFIX}{label}/reward": sum(v) / len(v) for label, v in by_label.items()}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "reward" not in logs:
            return
        found = self.scores(state.global_step)
        logs.update(found)
        if state.log_history and state.log_history[-1].get("step") == state.global_step:
            state.log_history[-1].update(found)


class RewardCurves(TrainerCallback):
    """Writes ``rewards.csv`` and ``loss.csv`` at every log step, the PNGs when training ends."""

    def __init__(self, run_dir: Path, title: str) -> None:
        self.run_dir = Path(run_dir)
        self.title = title

    def on_log(self, args, state, control, logs=None, **kwargs):
        write_reward_curves(state.log_history, self.run_dir, self.title, png=False)

    def on_train_end(self, args, state, control, **kwargs):
        write_reward_curves(state.log_history, self.run_dir, self.title, png=True)


def reward_rows(log_history: Sequence[Mapping[str, Any]]) -> tuple[list[LossRow], list[str]]:
    """One row per logged step with the :data:`REWARD_LOG_KEYS` columns plus any probe columns."""
    probe_keys = sorted({k for e in log_history for k in e if k.startswith(PROBE_PREFIX)})
    keys = {
        **REWARD_LOG_KEYS,
        **{k: "probe_" + k[len(PROBE_PREFIX) :].replace("/reward", "") for k in probe_keys},
    }
    # TRL logs None for a component that applied to no completion of the step (correctness on a
    # batch of unanswerable prompts): an empty cell, not a number
    clean = [{k: v for k, v in e.items() if v is not None} for e in log_history]
    rows = [r for r in rows_from_log_history(clean, keys) if "reward" in r.values]
    present = [c for c in keys.values() if any(c in r.values for r in rows)]
    return rows, ["step", *present]


def write_reward_curves(
    log_history: Sequence[Mapping[str, Any]], run_dir: Path, title: str, *, png: bool = True
) -> Path:
    """``rewards.csv`` (+ ``rewards.png``) and ``loss.csv`` (+ ``loss.png``) from a trainer's log history."""
    rows, columns = reward_rows(log_history)
    path = write_loss_csv(rows, Path(run_dir) / "rewards.csv", columns)
    loss_rows = rows_from_log_history([{k: v for k, v in e.items() if v is not None} for e in log_history])
    if png:
        plot_rewards_png(rows, Path(run_dir) / "rewards.png", title)
        write_loss_curves(loss_rows, Path(run_dir), title=f"{title}: policy loss")
    else:
        write_loss_csv(loss_rows, Path(run_dir) / "loss.csv")
    return path


def plot_rewards_png(rows: Sequence[LossRow], path: Path, title: str) -> Path:
    """Four panels: total reward (± std, probes dashed), component means (± std), KL, completion length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(col: str) -> tuple[list[int], list[float]]:
        pts = [(r.step, v) for r in rows if (v := r.values.get(col)) is not None and math.isfinite(v)]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), dpi=100)
    ax = axes[0][0]
    xs, ys = series("reward")
    _, sd = series("reward_std")
    ax.plot(xs, ys, marker="o", markersize=3, label="total reward")
    if len(sd) == len(ys):
        ax.fill_between(xs, [y - s for y, s in zip(ys, sd, strict=True)],
                        [y + s for y, s in zip(ys, sd, strict=True)], alpha=0.2)  # fmt: skip
    for col in sorted({c for r in rows for c in r.values if c.startswith("probe_")}):
        px, py = series(col)
        ax.plot(px, py, linestyle="--", label=col)
    ax.set_title("weighted reward")
    ax.legend(fontsize=7)
    ax = axes[0][1]
    for c in COMPONENTS:
        xs, ys = series(f"{c}_mean")
        _, sd = series(f"{c}_std")
        if not xs:
            continue
        (line,) = ax.plot(xs, ys, marker="o", markersize=2, label=c)
        if len(sd) == len(ys):
            ax.fill_between(xs, [y - s for y, s in zip(ys, sd, strict=True)],
                            [y + s for y, s in zip(ys, sd, strict=True)], alpha=0.1, color=line.get_color())  # fmt: skip
    ax.set_title("reward components (mean ± std)")
    ax.legend(fontsize=7)
    for ax, col, name in (
        (axes[1][0], "kl", "KL to the reference (the SFT adapter)"),
        (axes[1][1], "completion_length", "completion length (tokens)"),
    ):
        xs, ys = series(col)
        ax.plot(xs, ys, marker="o", markersize=3)
        ax.set_title(name)
    for ax in axes.flat:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


# --- the runner ----------------------------------------------------------------------------------


class GrpoRunner:
    """Runs one GRPO stage on top of an SFT adapter.

    Args:
        config: the settings (default :class:`GrpoConfig`); resolved for the device.
        driver: an open ``neo4j.Driver`` for graph-judged rewards (``rewards.evidence`` graph/auto).
        device: ``cuda``/``cpu`` (default: CUDA when available).
        progress: show the trainer's progress bar.

    After :meth:`run`, ``trainer`` and ``suite`` hold the objects the run used (for inspection).
    """

    def __init__(
        self,
        config: GrpoConfig | None = None,
        *,
        driver: Any = None,
        device: str | None = None,
        progress: bool = True,
    ) -> None:
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.config = (config or GrpoConfig()).resolve(self.device)
        self.driver = driver
        self.progress = progress
        self.trainer: Any = None
        self.suite: RewardSuite | None = None

    def evidence_source(self) -> tuple[BatchEvidenceSource, str]:
        """The batch evidence the config asks for, and its name (``graph`` or ``contexts``).

        Raises:
            ConfigError: ``evidence: graph`` without a driver.
        """
        mode = self.config.rewards.evidence
        if mode == "graph" and self.driver is None:
            raise ConfigError(
                "rewards.evidence is 'graph' but no Neo4j driver was given (start Neo4j or use contexts)"
            )
        if mode != "contexts" and self.driver is not None:
            return GraphBatchEvidence(self.driver), "graph"
        return ContextEvidence(), "contexts"

    def build_suite(self, out_dir: Path) -> tuple[RewardSuite, str]:
        """The reward suite and the name of its evidence source (``graph`` or ``contexts``)."""
        source, name = self.evidence_source()
        recorder = CompletionRecorder(out_dir / COMPLETIONS_FILE) if self.config.record_completions else None
        return RewardSuite(self.config.rewards, source, recorder=recorder), name

    def run(
        self,
        base_dir: Path,
        sft_run_dir: Path | None,
        prompts_path: Path,
        out_dir: Path,
        eval_prompts: Path | None = None,
    ) -> GrpoResult:
        """Train and write the run folder (see the module doc).

        Args:
            base_dir: the base model directory (``config.json`` + weights + tokenizer).
            sft_run_dir: the SFT run folder (or adapter folder) to continue; ``None`` starts a fresh
                LoRA adapter from the config's ``lora_*`` fields.
            prompts_path: ``DATASET_DIR/grpo/prompts.jsonl``.
            out_dir: the run folder (must not hold a finished run).
            eval_prompts: held-out prompts (``DATASET_DIR/grpo/eval.jsonl``) scored with the same
                rewards before and after training (``metrics.json`` ``eval``); None: no evaluation.

        Raises:
            ConfigError: missing inputs, a finished run in ``out_dir``, bad prompts or probes.
        """
        base_dir, out_dir, prompts_path = Path(base_dir), Path(out_dir), Path(prompts_path)
        if not (base_dir / "config.json").is_file():
            raise ConfigError(f"{base_dir}: not a model directory (no config.json)")
        if (out_dir / "metrics.json").exists():
            raise ConfigError(f"{out_dir}: already holds a finished run; choose a new output folder")
        adapter_dir = resolve_adapter(sft_run_dir) if sft_run_dir is not None else None
        prompt_set = load_prompts(prompts_path)
        rows = balance_unanswerable(prompt_set, self.config.unanswerable_draw_share)
        eval_rows = load_prompts(eval_prompts)[: self.config.eval_limit] if eval_prompts is not None else None
        probes = load_probes(self.config.probes) if self.config.probes else None
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / COMPLETIONS_FILE).unlink(missing_ok=True)

        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

        c = self.config
        set_seed(c.seed)
        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True, padding_side="left")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(c.precision, torch.float32)
        model = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=dtype)
        peft_config = None
        if adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=True)
        else:
            peft_config = self.lora_config()
        suite, evidence_name = self.build_suite(out_dir)
        self.suite = suite
        trainer = self.build_trainer(
            model, tokenizer, Dataset.from_list(rows), suite, out_dir, peft_config,
            eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        )  # fmt: skip
        if probes is not None:
            trainer.add_callback(RewardProbes(suite, probes))
        trainer.add_callback(RewardCurves(out_dir, f"GRPO of {base_dir.name}"))
        self.trainer = trainer
        log.info(
            "grpo.start", base=str(base_dir), adapter=str(adapter_dir), prompts=str(prompts_path), n=len(rows),
            unanswerable=sum(not r["answerable"] for r in rows),
            out=str(out_dir), device=self.device, use_vllm=c.use_vllm, evidence=evidence_name,
        )  # fmt: skip
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        before = self._evaluate(trainer, eval_rows)
        started = time.perf_counter()
        output = trainer.train()
        seconds = time.perf_counter() - started
        after = self._evaluate(trainer, eval_rows)

        trainer.model.save_pretrained(out_dir, selected_adapters=["default"])
        tokenizer.save_pretrained(out_dir)
        copy_notice(base_dir, out_dir)
        (out_dir / "grpo_config.yaml").write_text(c.to_yaml(), encoding="utf-8")
        write_json(
            out_dir / "provenance.json",
            self._provenance(base_dir, adapter_dir, prompts_path, len(prompt_set), len(rows), evidence_name),
        )
        metrics = self._metrics(trainer, output, seconds, suite, evidence_name)
        if eval_rows:
            metrics["eval"] = {
                "prompts": len(eval_rows),
                "source": str(eval_prompts),
                "before": before,
                "after": after,
            }
        write_json(out_dir / "metrics.json", metrics)
        log.info("grpo.done", out=str(out_dir), steps=metrics["steps"], reward_first=metrics["reward_first"],
                 reward_last=metrics["reward_last"])  # fmt: skip
        return GrpoResult(out_dir, metrics["steps"], metrics["reward_first"], metrics["reward_last"], metrics,
                          list(trainer.state.log_history))  # fmt: skip

    def lora_config(self):
        from peft import LoraConfig

        c = self.config
        return LoraConfig(r=c.lora_r, lora_alpha=c.lora_alpha, lora_dropout=c.lora_dropout,
                          target_modules=c.target_modules, bias="none", task_type="CAUSAL_LM")  # fmt: skip

    def _evaluate(self, trainer, eval_rows: list[dict[str, Any]] | None) -> dict[str, float] | None:
        """Mean rewards (total and per component) of sampled completions of the eval prompts
        (recorded in completions.jsonl as ``source: eval``)."""
        if not eval_rows:
            return None
        assert self.suite is not None
        self.suite.source = "eval"
        try:
            found = trainer.evaluate()
        finally:
            self.suite.source = "policy"
        return {k.removeprefix("eval_"): round(float(v), 4) for k, v in found.items()
                if k.startswith(("eval_reward", "eval_rewards/")) and v is not None}  # fmt: skip

    def build_trainer(
        self,
        model,
        tokenizer,
        dataset,
        suite: RewardSuite,
        out_dir: Path,
        peft_config=None,
        eval_dataset=None,
    ):
        """The configured ``GRPOTrainer`` (public so tests can inspect it)."""
        from transformers import PrinterCallback
        from trl import GRPOConfig, GRPOTrainer

        c = self.config
        cuda = self.device.startswith("cuda")
        args = GRPOConfig(
            output_dir=str(out_dir / CHECKPOINTS),
            learning_rate=c.learning_rate,
            beta=c.beta,
            lr_scheduler_type=c.lr_scheduler_type,
            warmup_steps=c.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps (transformers 5)
            max_grad_norm=c.max_grad_norm,
            loss_type=c.loss_type,
            scale_rewards=c.scale_rewards,
            num_iterations=c.num_iterations,
            epsilon=c.epsilon,
            per_device_train_batch_size=c.per_device_train_batch_size,
            per_device_eval_batch_size=c.num_generations,
            eval_strategy="no",
            gradient_accumulation_steps=c.gradient_accumulation_steps,
            max_steps=c.max_steps,
            num_train_epochs=c.num_train_epochs,
            num_generations=c.num_generations,
            max_completion_length=c.max_completion_length,
            temperature=c.temperature,
            top_p=c.top_p,
            use_vllm=bool(c.use_vllm),
            vllm_mode=c.vllm_mode,
            vllm_gpu_memory_utilization=c.vllm_gpu_memory_utilization,
            reward_weights=suite.weights,
            logging_steps=c.logging_steps,
            save_strategy="steps" if c.save_steps else "no",
            save_steps=c.save_steps or 500,
            seed=c.seed,
            data_seed=c.seed,
            bf16=c.precision == "bf16",
            fp16=c.precision == "fp16",
            gradient_checkpointing=bool(c.gradient_checkpointing),
            gradient_checkpointing_kwargs={"use_reentrant": False} if c.gradient_checkpointing else None,
            use_cpu=not cuda and self.device == "cpu",
            dataloader_pin_memory=cuda,
            report_to="none",
            disable_tqdm=not self.progress,
            log_completions=False,
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=suite.functions,
            args=args,
            train_dataset=dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
        # without tqdm the Trainer prints every log dict on stdout, which would corrupt `--json`
        # output; the logs still reach state.log_history (rewards.csv) and structlog (as in sft.py)
        trainer.remove_callback(PrinterCallback)
        return trainer

    def _metrics(self, trainer, output, seconds: float, suite: RewardSuite, evidence: str) -> dict[str, Any]:
        state = trainer.state
        rows, _ = reward_rows(state.log_history)

        def first_last(col: str) -> tuple[float | None, float | None]:
            vals = [v for r in rows if (v := r.values.get(col)) is not None]
            return (vals[0], vals[-1]) if vals else (None, None)

        reward_first, reward_last = first_last("reward")
        components = {
            c: dict(zip(("first", "last"), first_last(f"{c}_mean"), strict=True)) for c in COMPONENTS
        }
        return {
            "steps": state.global_step,
            "max_steps": state.max_steps,
            "train_seconds": round(seconds, 2),
            "steps_per_second": round(state.global_step / seconds, 4) if seconds else None,
            "peak_rss_mb": peak_rss_mb(),
            "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)
            if self.device.startswith("cuda")
            else None,
            "reward_first": reward_first,
            "reward_last": reward_last,
            "components": components,
            "kl_last": first_last("kl")[1],
            "completion_length_last": first_last("completion_length")[1],
            "mean_train_loss": round(output.training_loss, 6) if output.training_loss is not None else None,
            "batches_scored": suite.batches_scored,
            "graph_reads": suite.graph_reads,
            "evidence": evidence,
            "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
            "device": self.device,
            "precision": self.config.precision,
            "use_vllm": bool(self.config.use_vllm),
        }

    def _provenance(
        self,
        base_dir: Path,
        adapter_dir: Path | None,
        prompts: Path,
        n_prompts: int,
        n_drawn: int,
        evidence: str,
    ) -> dict[str, Any]:
        manifest_path = prompts.resolve().parent.parent / "manifest.json"
        manifest = read_json(manifest_path) if manifest_path.is_file() else {}
        parent: dict[str, Any] | None = None
        if adapter_dir is not None:
            run_dir = adapter_dir.parent if adapter_dir.name == "adapter" else adapter_dir
            parent_prov = run_dir / "provenance.json"
            parent = {
                "path": str(run_dir.resolve()),
                "adapter": str(adapter_dir.resolve()),
                "adapter_sha256": _first_hash(
                    adapter_dir, ("adapter_model.safetensors", "adapter_model.bin")
                ),
                "provenance": read_json(parent_prov) if parent_prov.is_file() else None,
            }
        return {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "method": "grpo",
            "base": {"path": str(base_dir.resolve()), "config_sha256": sha256_file(base_dir / "config.json")},
            "parent": parent,
            "prompts": {
                "path": str(prompts.resolve()),
                "sha256": sha256_file(prompts),
                "records": n_prompts,
                "unanswerable_draw_share": self.config.unanswerable_draw_share,
                "rows_drawn_from": n_drawn,  # records plus the repeated unanswerable ones
                "dataset_dir": str(manifest_path.parent) if manifest else None,
            },
            "dataset": {
                "graph_version": manifest.get("graph_version"),
                "dataset_hash": manifest.get("dataset_hash"),
            },
            "rewards": {
                "evidence": evidence,
                "weights": dict(zip(COMPONENTS, self.config.rewards.weights.as_list(), strict=True)),
            },  # fmt: skip
            "seed": self.config.seed,
            "device": self.device,
            "versions": library_versions(),
        }


def _first_hash(folder: Path, names: Sequence[str]) -> str | None:
    for name in names:
        if (folder / name).is_file():
            return sha256_file(folder / name)
    return None


__all__ = [
    "COMPLETIONS_FILE",
    "GrpoResult",
    "GrpoRunner",
    "RewardCurves",
    "RewardProbes",
    "plot_rewards_png",
    "reward_rows",
    "write_reward_curves",
]
