"""LoRA SFT of a Qwen-architecture base on the dataset folder's chat split, with TRL and PEFT.

``SftRunner(config).run(base_dir, data_dir, out_dir)`` reads ``DATASET_DIR/chat/train.jsonl`` and
``val.jsonl`` (only their ``messages`` reach the trainer; the provenance fields stay in the
dataset), trains a LoRA adapter with TRL's ``SFTTrainer`` on the assistant's tokens only,
evaluates on the validation split every ``eval_steps`` with early stopping, keeps the best
checkpoint, and writes the run folder::

    RUN_DIR/
      adapter_config.json adapter_model.safetensors   PEFT format at the root: PeftModel.from_pretrained
                                                      and vLLM's LoRARequest load the folder as is
      tokenizer.json tokenizer_config.json ...        the base's tokenizer (its own chat template)
      sft_config.yaml      the resolved SftConfig (precision/checkpointing fixed for the device)
      provenance.json      base path + config hash, graph_version + dataset_hash, record counts, versions
      loss.csv loss.png    step, train_loss, eval_loss, lr
      metrics.json         time, steps/s, tokens/s, peak memory, final losses
      checkpoints/         Trainer checkpoints (resume with resume=True)

There is deliberately no ``config.json`` at the root: loaders take a folder with a ``config.json``
for a full model, and this folder is an adapter.

Nothing here special-cases the tiny offline base: a real Qwen directory goes through the same code.
The one base-dependent step is the chat template, see :func:`training_chat_template`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import structlog
import torch

from kgqa.errors import ConfigError
from training.gemma_base import copy_notice
from training.run_artifacts import (
    iter_jsonl,
    library_versions,
    peak_rss_mb,
    read_json,
    rows_from_log_history,
    sha256_file,
    write_json,
    write_loss_curves,
)
from training.sft_config import SftConfig

log = structlog.get_logger(__name__)

CHECKPOINTS = "checkpoints"
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class SftResult:
    """What a run produced; ``metrics`` is the content of ``metrics.json``."""

    run_dir: Path
    steps: int
    train_loss: float | None
    eval_loss: float | None
    best_checkpoint: str | None
    stopped_early: bool
    resumed_from: str | None
    metrics: dict = field(default_factory=dict)


def load_chat_split(path: Path) -> list[dict]:
    """The ``messages`` of each record of a chat JSONL file, checked for the trainer's needs.

    Raises:
        ConfigError: naming the file (and line) when it is missing, malformed or has a record
            without a final assistant turn.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: dataset file not found (expected DATASET_DIR/chat/{path.name})")
    records = []
    for lineno, record in iter_jsonl(path):
        messages = record.get("messages") if isinstance(record, dict) else None
        if not isinstance(messages, list) or not messages:
            raise ConfigError(f"{path}:{lineno}: record has no 'messages' list")
        for msg in messages:
            if (
                not isinstance(msg, dict)
                or msg.get("role") not in ROLES
                or not isinstance(msg.get("content"), str)
            ):
                raise ConfigError(
                    f"{path}:{lineno}: each message needs a role in {ROLES} and a string content"
                )
        if messages[-1]["role"] != "assistant":
            raise ConfigError(f"{path}:{lineno}: the last message must be the assistant's answer")
        records.append({"messages": [{"role": m["role"], "content": m["content"]} for m in messages]})
    return records


def check_fits(tokenizer, records: list[dict], max_length: int, path: Path) -> None:
    """Raise unless every conversation fits ``max_length`` tokens whole.

    The answer is the end of a conversation, so truncation always cuts the answer (TRL keeps a
    truncated record and silently trains on what is left of it, or on nothing at all when the
    prompt alone is longer).

    Raises:
        ConfigError: naming the file, how many records are too long, the longest and its line.
    """
    lengths = [len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
               for r in records]  # fmt: skip
    over = [(n, i + 1) for i, n in enumerate(lengths) if n > max_length]
    if over:
        longest, line = max(over)
        raise ConfigError(
            f"{path}: {len(over)} of {len(records)} records are longer than max_length={max_length} tokens "
            f"(the longest, line {line}, has {longest}) and would lose their answer to truncation; raise "
            "max_length or cut the prompts (dataset config export.max_context_chars, generation.distractors)"
        )
    log.info(
        "sft.lengths",
        file=str(path),
        records=len(records),
        max_tokens=max(lengths, default=0),
        max_length=max_length,
    )


def training_chat_template(tokenizer, config: SftConfig, base_dir: Path) -> str | None:
    """The chat template to train with, or ``None`` to use the tokenizer's own.

    ``assistant_only_loss`` needs ``{% generation %}`` markers (transformers builds the assistant mask
    from them). The tiny base's ChatML has them; a real Qwen's does not, and TRL 1.16 swaps in its
    patched template only for the families it knows (exact template match) and raises otherwise.
    Checking here turns that into a clear error before the model is loaded, and lets a config give
    its own template (``chat_template_path``).

    Raises:
        ConfigError: the base has no template, or one without markers that TRL cannot patch.
    """
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if not config.assistant_only_loss:
        return None
    if config.chat_template_path is not None:
        path = Path(config.chat_template_path)
        try:
            template = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: chat template file not found") from exc
        if not has_generation_markers(template):
            raise ConfigError(f"{path}: the chat template has no {{% generation %}} markers")
        return template
    if not tokenizer.chat_template:
        raise ConfigError(f"{base_dir}: the tokenizer has no chat template; set chat_template_path")
    if has_generation_markers(tokenizer.chat_template):
        return None
    try:
        return get_training_chat_template(tokenizer)
    except ValueError as exc:
        raise ConfigError(
            f"{base_dir}: the chat template has no {{% generation %}} markers and TRL has no patched version "
            "of it; set chat_template_path to a copy with the assistant turn wrapped in "
            "{% generation %}...{% endgeneration %}, or assistant_only_loss: false"
        ) from exc


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest checkpoint under ``ckpt_dir`` that was written to the end, or None.

    A process killed while the Trainer saves leaves a ``checkpoint-N`` folder without its
    ``trainer_state.json`` (the Trainer writes it last, after the weights, optimizer and RNG
    state); resuming from it fails, so such a folder is passed over for the one before.
    """
    if not ckpt_dir.is_dir():
        return None
    steps = []
    for path in ckpt_dir.glob("checkpoint-*"):
        suffix = path.name.removeprefix("checkpoint-")
        if path.is_dir() and suffix.isdigit():
            steps.append((int(suffix), path))
    for _, path in sorted(steps, reverse=True):
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("sft.incomplete_checkpoint_skipped", checkpoint=str(path))
            continue
        return str(path)
    return None


class SftRunner:
    """Runs one LoRA SFT; the device defaults to CUDA when available."""

    def __init__(self, config: SftConfig | None = None, *, device: str | None = None, progress: bool = True):
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.config = (config or SftConfig()).resolve(self.device)
        self.progress = progress

    def run(
        self,
        base_dir: Path,
        data_dir: Path,
        out_dir: Path,
        resume: bool = False,
        *,
        init_adapter: Path | None = None,
        callbacks: list | None = None,
    ) -> SftResult:
        """Train, evaluate, save the adapter and the run records into ``out_dir``.

        Args:
            base_dir: a model directory (``config.json`` + weights + tokenizer).
            data_dir: the dataset folder (``manifest.json``, ``chat/train.jsonl``, ``chat/val.jsonl``).
            out_dir: the run folder.
            resume: continue from the last checkpoint in ``out_dir/checkpoints`` (fresh start if none).
            init_adapter: a trained adapter folder to continue training (incremental retraining):
                its LoRA weights and shape are the starting point instead of a fresh LoRA (the
                config's ``lora_*`` fields are then not used); recorded as the run's parent.
            callbacks: extra ``transformers.TrainerCallback`` objects (progress, cancellation).

        Raises:
            ConfigError: missing/empty inputs, a run folder already in use without ``resume``.
        """
        base_dir, data_dir, out_dir = Path(base_dir), Path(data_dir), Path(out_dir)
        if not (base_dir / "config.json").is_file():
            raise ConfigError(f"{base_dir}: not a model directory (no config.json)")
        manifest = read_json(data_dir / "manifest.json")
        train = load_chat_split(data_dir / "chat" / "train.jsonl")
        val = load_chat_split(data_dir / "chat" / "val.jsonl")
        if not train:
            raise ConfigError(f"{data_dir / 'chat' / 'train.jsonl'}: no training records")
        if not val:
            raise ConfigError(
                f"{data_dir / 'chat' / 'val.jsonl'}: no validation records (needed for early stopping)"
            )
        resume_from = self._checkpoint_to_resume(out_dir, resume)

        from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

        set_seed(self.config.seed)
        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
        base_template = tokenizer.chat_template
        template = training_chat_template(tokenizer, self.config, base_dir)
        if template is not None:
            tokenizer.chat_template = template
        for name, records in (("train", train), ("val", val)):
            check_fits(tokenizer, records, self.config.max_length, data_dir / "chat" / f"{name}.jsonl")
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.config.precision, torch.float32)
        model = AutoModelForCausalLM.from_pretrained(base_dir, local_files_only=True, dtype=dtype)
        if init_adapter is not None:
            from peft import PeftModel

            if not (Path(init_adapter) / "adapter_config.json").is_file():
                raise ConfigError(f"{init_adapter}: not an adapter folder (no adapter_config.json)")
            model = PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        trainer = self.build_trainer(model, tokenizer, train, val, out_dir, callbacks=callbacks)
        log.info(
            "sft.start",
            base=str(base_dir),
            data=str(data_dir),
            out=str(out_dir),
            train=len(train),
            val=len(val),
            device=self.device,
            precision=self.config.precision,
            resume_from=resume_from,
        )
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        output = trainer.train(resume_from_checkpoint=resume_from)
        seconds = time.perf_counter() - started
        final_eval = trainer.evaluate()

        trainer.model.save_pretrained(out_dir)
        tokenizer.chat_template = base_template
        tokenizer.save_pretrained(out_dir)
        copy_notice(base_dir, out_dir)
        (out_dir / "sft_config.yaml").write_text(self.config.to_yaml(), encoding="utf-8")
        write_json(
            out_dir / "provenance.json",
            self._provenance(base_dir, data_dir, manifest, len(train), len(val), init_adapter),
        )
        rows = rows_from_log_history(trainer.state.log_history)
        write_loss_curves(rows, out_dir, title=f"LoRA SFT of {base_dir.name}")
        state = trainer.state
        train_losses = [r.values["train_loss"] for r in rows if r.values.get("train_loss") is not None]
        metrics = {
            "steps": state.global_step,
            "max_steps": state.max_steps,
            "epochs": round(state.epoch or 0.0, 3),
            "train_seconds": round(seconds, 2),
            "steps_per_second": round(output.metrics.get("train_steps_per_second", 0.0), 3),
            "tokens_seen": int(state.num_input_tokens_seen),
            "tokens_per_second": round(state.num_input_tokens_seen / seconds, 1) if seconds else None,
            "peak_rss_mb": peak_rss_mb(),
            "peak_cuda_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1)
            if self.device.startswith("cuda")
            else None,
            "first_train_loss": train_losses[0] if train_losses else None,
            "final_train_loss": train_losses[-1] if train_losses else None,
            "mean_train_loss": round(output.training_loss, 4),
            "eval_loss": round(final_eval["eval_loss"], 4),
            "best_eval_loss": state.best_metric,
            "best_checkpoint": state.best_model_checkpoint,
            "stopped_early": state.global_step < state.max_steps,
            "resumed_from": resume_from,
            "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
            "total_params": sum(p.numel() for p in trainer.model.parameters()),
            "device": self.device,
            "precision": self.config.precision,
        }
        write_json(out_dir / "metrics.json", metrics)
        log.info("sft.done", out=str(out_dir), steps=state.global_step, eval_loss=metrics["eval_loss"])
        return SftResult(
            run_dir=out_dir,
            steps=state.global_step,
            train_loss=metrics["final_train_loss"],
            eval_loss=metrics["eval_loss"],
            best_checkpoint=state.best_model_checkpoint,
            stopped_early=metrics["stopped_early"],
            resumed_from=resume_from,
            metrics=metrics,
        )

    def build_trainer(
        self,
        model,
        tokenizer,
        train: list[dict],
        val: list[dict],
        out_dir: Path,
        callbacks: list | None = None,
    ):
        """The configured ``SFTTrainer`` (public so tests can inspect its datasets and collator).

        A ``model`` that is already a PEFT model (an adapter being continued) is trained as it is;
        any other gets a fresh LoRA from the config.
        """
        from datasets import Dataset
        from peft import LoraConfig, PeftModel
        from transformers import EarlyStoppingCallback, PrinterCallback
        from trl import SFTConfig, SFTTrainer

        c = self.config
        cuda = self.device.startswith("cuda")
        args = SFTConfig(
            output_dir=str(out_dir / CHECKPOINTS),
            per_device_train_batch_size=c.per_device_train_batch_size,
            per_device_eval_batch_size=c.per_device_eval_batch_size,
            gradient_accumulation_steps=c.gradient_accumulation_steps,
            learning_rate=c.learning_rate,
            lr_scheduler_type=c.lr_scheduler_type,
            warmup_steps=c.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps (transformers 5)
            weight_decay=c.weight_decay,
            max_grad_norm=c.max_grad_norm,
            num_train_epochs=c.num_train_epochs,
            max_steps=c.max_steps,
            max_length=c.max_length,
            eval_strategy="steps",
            eval_steps=c.eval_steps,
            save_strategy="steps",
            save_steps=c.save_steps,
            save_total_limit=c.save_total_limit,
            load_best_model_at_end=c.select_best,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
            logging_steps=c.logging_steps,
            logging_first_step=True,
            seed=c.seed,
            data_seed=c.seed,
            bf16=c.precision == "bf16",
            fp16=c.precision == "fp16",
            gradient_checkpointing=bool(c.gradient_checkpointing),
            gradient_checkpointing_kwargs={"use_reentrant": False} if c.gradient_checkpointing else None,
            assistant_only_loss=c.assistant_only_loss,
            packing=False,
            use_cpu=not cuda and self.device == "cpu",
            dataloader_pin_memory=cuda,
            include_num_input_tokens_seen="non_padding",
            report_to="none",
            disable_tqdm=not self.progress,
        )
        lora = LoraConfig(
            r=c.lora_r,
            lora_alpha=c.lora_alpha,
            lora_dropout=c.lora_dropout,
            target_modules=c.target_modules,
            bias="none",
            task_type="CAUSAL_LM",
        )
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(train),
            eval_dataset=Dataset.from_list(val),
            processing_class=tokenizer,
            peft_config=None if isinstance(model, PeftModel) else lora,
            callbacks=[
                *(
                    [
                        EarlyStoppingCallback(
                            early_stopping_patience=c.early_stopping_patience,
                            early_stopping_threshold=c.early_stopping_threshold,
                        )
                    ]
                    if c.select_best
                    else []
                ),
                *(callbacks or []),
            ],
        )
        # without tqdm the Trainer prints every log dict on stdout, which would corrupt `--json` output;
        # the logs still reach state.log_history (loss.csv) and the structlog events
        trainer.remove_callback(PrinterCallback)
        return trainer

    @staticmethod
    def _checkpoint_to_resume(out_dir: Path, resume: bool) -> str | None:
        last = last_complete_checkpoint(out_dir / CHECKPOINTS)
        if resume:
            if last is None:
                log.warning("sft.resume_without_checkpoint", out=str(out_dir))
            return last
        if last is not None or (out_dir / "metrics.json").exists():
            raise ConfigError(
                f"{out_dir}: already holds an SFT run; pass resume to continue it or choose a new output folder"
            )
        return None

    def _provenance(
        self,
        base_dir: Path,
        data_dir: Path,
        manifest: dict,
        n_train: int,
        n_val: int,
        init_adapter: Path | None = None,
    ) -> dict:
        pretrain = base_dir / "pretrain.json"
        parent = {"parent": {"path": str(Path(init_adapter).resolve())}} if init_adapter is not None else {}
        return {
            **parent,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "base": {
                "path": str(base_dir.resolve()),
                "config_sha256": sha256_file(base_dir / "config.json"),
                "pretrain": read_json(pretrain) if pretrain.is_file() else None,
            },
            "dataset": {
                "path": str(data_dir.resolve()),
                "graph_version": manifest.get("graph_version"),
                "dataset_hash": manifest.get("dataset_hash"),
                "train_records": n_train,
                "val_records": n_val,
                "train_sha256": sha256_file(data_dir / "chat" / "train.jsonl"),
                "val_sha256": sha256_file(data_dir / "chat" / "val.jsonl"),
            },
            "seed": self.config.seed,
            "device": self.device,
            "versions": library_versions(),
        }


def result_to_dict(result: SftResult) -> dict:
    """JSON-friendly view of a result (for ``--json``)."""
    data = asdict(result)
    data["run_dir"] = str(result.run_dir)
    return data


__all__ = [
    "SftResult",
    "SftRunner",
    "check_fits",
    "load_chat_split",
    "result_to_dict",
    "training_chat_template",
]
