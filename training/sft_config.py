"""Settings of LoRA SFT: the single surface the CLI, ``training/configs/*.yaml`` and tests fill in.

Defaults follow the brief's experiments with a real Qwen (best cost/quality): LoRA r=16, alpha=32,
dropout 0.05 on q/k/v, lr 3e-5 with cosine decay and 3% warmup, max length 1024, gradient
accumulation 4, clipping at 1.0, loss on the assistant's tokens only, evaluation on the validation
split with early stopping. ``training/configs/sft.yaml`` documents them; ``sft-tiny.yaml`` holds the
settings under which the tiny offline base learns in minutes.

Precision and gradient checkpointing depend on where the run happens, so they are ``"auto"`` here
and :meth:`SftConfig.resolve` fixes them: bf16 + checkpointing on CUDA, fp32 without on CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kgqa.errors import ConfigError
from training.config_files import read_mapping

Precision = Literal["auto", "bf16", "fp16", "fp32"]


class SftConfig(BaseModel):
    """LoRA SFT hyper-parameters (TRL ``SFTConfig`` + PEFT ``LoraConfig`` + early stopping)."""

    model_config = ConfigDict(extra="forbid")

    # LoRA
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator (scale = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj"],
        description='Module names to adapt, or "all-linear" (every linear layer but the output head).',
    )
    # optimisation
    learning_rate: float = Field(3e-5, gt=0, description="Peak learning rate.")
    lr_scheduler_type: str = Field("cosine", description="transformers scheduler name (cosine, linear, ...).")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of the steps spent warming up.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    per_device_train_batch_size: int = Field(4, ge=1, description="Sequences per device per micro-step.")
    per_device_eval_batch_size: int = Field(8, ge=1, description="Sequences per device when evaluating.")
    gradient_accumulation_steps: int = Field(4, ge=1, description="Micro-steps per optimizer step.")
    num_train_epochs: float = Field(3.0, gt=0, description="Epochs (ignored when max_steps > 0).")
    max_steps: int = Field(-1, description="Optimizer steps; -1 runs num_train_epochs.")
    max_length: int = Field(
        1024, ge=16, description="Longest tokenized conversation; longer ones are truncated."
    )
    # evaluation, checkpoints, logging
    eval_steps: int = Field(50, ge=1, description="Evaluate on the validation split every N optimizer steps.")
    save_steps: int = Field(
        50,
        ge=1,
        description="Checkpoint every N steps (resume point); a multiple of eval_steps when select_best.",
    )
    save_total_limit: int = Field(2, ge=1, description="Checkpoints kept (the best one is always kept).")
    select_best: bool = Field(
        True,
        description=(
            "Keep the checkpoint with the best validation loss and stop early when it stops improving. "
            "The validation split holds unseen clauses, so this selects for generalization; turn it off "
            "to keep the last model when the goal is knowledge injection (the tiny offline model)."
        ),
    )
    early_stopping_patience: int = Field(
        3, ge=1, description="Evaluations without eval_loss improvement before stopping."
    )
    early_stopping_threshold: float = Field(0.0, ge=0, description="Smallest eval_loss decrease that counts.")
    logging_steps: int = Field(10, ge=1, description="Log the train loss every N steps.")
    seed: int = Field(42, description="Seeds LoRA initialisation, dropout and data order.")
    # loss and template
    assistant_only_loss: bool = Field(
        True, description="Loss on the assistant's tokens only (not the prompt)."
    )
    chat_template_path: Path | None = Field(
        None,
        description=(
            "A Jinja chat template with {% generation %} markers, for a base whose template TRL cannot "
            "patch. Used for training only; the saved tokenizer keeps the base's template."
        ),
    )
    # hardware
    precision: Precision = Field("auto", description="auto: bf16 on CUDA, fp32 on CPU.")
    gradient_checkpointing: bool | None = Field(None, description="None: on for CUDA, off on CPU.")

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not value:
            raise ValueError('target_modules is empty: name modules or use "all-linear"')
        return value

    @model_validator(mode="after")
    def _save_on_eval_steps(self) -> SftConfig:
        if self.select_best and self.save_steps % self.eval_steps:
            raise ValueError(
                f"save_steps ({self.save_steps}) must be a multiple of eval_steps ({self.eval_steps}): "
                "the best checkpoint is chosen by eval_loss"
            )
        return self

    @classmethod
    def load(cls, path: Path | str) -> SftConfig:
        """Read a YAML (``.yaml``/``.yml``) or JSON file.

        Raises:
            ConfigError: naming the file when it is missing, unparsable or has invalid fields.
        """
        path = Path(path)
        data = read_mapping(path, "SFT config")
        if data.get("chat_template_path"):
            template = Path(data["chat_template_path"])
            data["chat_template_path"] = template if template.is_absolute() else path.parent / template
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid SFT config: {_errors(exc)}") from exc

    def with_overrides(self, **overrides: object) -> SftConfig:
        """A validated copy with some fields changed (``None`` values are ignored: CLI options left unset)."""
        data = {**self.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid SFT option: {_errors(exc)}") from exc

    def resolve(self, device: str) -> SftConfig:
        """Fix the hardware-dependent fields for ``device`` ("cuda", "cuda:0", "cpu", "mps").

        bf16 and gradient checkpointing save memory on GPUs; on CPU bf16 is slow or unsupported by
        TRL's defaults and checkpointing only costs time, so fp32 without it.
        """
        cuda = device.startswith("cuda")
        precision = self.precision
        if precision == "auto":
            precision = "bf16" if cuda else "fp32"
        if precision in ("bf16", "fp16") and not cuda:
            raise ConfigError(f"precision={precision} needs a CUDA device; this run is on {device}")
        checkpointing = cuda if self.gradient_checkpointing is None else self.gradient_checkpointing
        return self.model_copy(update={"precision": precision, "gradient_checkpointing": checkpointing})

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), allow_unicode=True, sort_keys=False)


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())


__all__ = ["Precision", "SftConfig"]
