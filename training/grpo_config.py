"""Settings of GRPO over the SFT adapter: the single surface the CLI, YAML files and tests fill in.

Defaults follow the brief: lr 1e-6, KL beta 0.05 (TRL's default is 0, i.e. no KL and no reference
model: set here on purpose), LoRA r=16/alpha=32 on q/k/v (used only when no SFT adapter is given;
a run that continues an SFT adapter keeps that adapter's own shape). ``training/configs/grpo.yaml``
documents every field; ``grpo-tiny.yaml`` holds CPU settings for the tiny offline base.

Hardware-dependent fields are ``"auto"``/``None`` here and :meth:`GrpoConfig.resolve` fixes them:
bf16 + gradient checkpointing on CUDA, fp32 without on CPU; vLLM generation (colocated) when CUDA
and the ``vllm`` package are both present.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kgqa.errors import ConfigError
from training.config_files import read_mapping
from training.rewards.config import RewardConfig

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "grpo.yaml"
Precision = Literal["auto", "bf16", "fp16", "fp32"]


class GrpoConfig(BaseModel):
    """GRPO hyper-parameters (TRL ``GRPOConfig`` + LoRA + the reward)."""

    model_config = ConfigDict(extra="forbid")

    # LoRA: only for a run without an SFT adapter (a fresh adapter on the base)
    lora_r: int = Field(16, ge=1, description="LoRA rank of a fresh adapter.")
    lora_alpha: int = Field(32, ge=1, description="LoRA scaling numerator of a fresh adapter.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA branch of a fresh adapter.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj"], description="Modules a fresh adapter adapts."
    )
    # optimisation
    learning_rate: float = Field(1e-6, gt=0, description="Peak learning rate.")
    beta: float = Field(0.05, ge=0, description="KL coefficient against the reference (the SFT adapter).")
    lr_scheduler_type: str = Field("constant", description="transformers scheduler name.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of the steps spent warming up.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    loss_type: str = Field("dapo", description="TRL loss: dapo (default), grpo, dr_grpo, bnpo, ...")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Advantage scaling: by the group's std (GRPO), the batch's, or none (Dr. GRPO)."
    )
    unanswerable_draw_share: float | None = Field(
        None,
        gt=0,
        lt=1,
        description=(
            "Share of the rows GRPO draws from that are unanswerable: the prompt set's unanswerable "
            "records are repeated to reach it (None: the set as exported, 20% unanswerable). The "
            "mix decides whether the policy keeps refusing; grpo-gemma.yaml records what it measured."
        ),
    )
    num_iterations: int = Field(1, ge=1, description="Optimisation passes per generated batch (mu).")
    epsilon: float = Field(0.2, gt=0, description="PPO-style clipping of the probability ratio.")
    per_device_train_batch_size: int = Field(8, ge=1, description="Completions per device per micro-step.")
    gradient_accumulation_steps: int = Field(2, ge=1, description="Micro-steps per optimizer step.")
    max_steps: int = Field(200, description="Optimizer steps; -1 runs num_train_epochs.")
    num_train_epochs: float = Field(1.0, gt=0, description="Epochs over the prompt set (when max_steps is -1).")
    seed: int = Field(42, description="Seeds sampling, data order and a fresh adapter's initialisation.")
    # generation
    num_generations: int = Field(8, ge=2, description="Completions per prompt (the group).")
    max_completion_length: int = Field(256, ge=1, description="Most tokens per completion.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling.")
    use_vllm: Literal["auto"] | bool = Field("auto", description="auto: vLLM when CUDA and vllm are present.")
    vllm_mode: Literal["colocate", "server"] = Field("colocate", description="vLLM in-process, or trl vllm-serve.")
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="GPU share vLLM may take (colocate).")
    # logging and records
    logging_steps: int = Field(1, ge=1, description="Log rewards/KL every N steps (rewards.csv rows).")
    save_steps: int | None = Field(None, ge=1, description="Checkpoint every N steps (None: only the final adapter).")
    record_completions: bool = Field(True, description="Write every scored completion to completions.jsonl.")
    eval_limit: int | None = Field(
        None,
        ge=1,
        description="Score only the first N held-out prompts before and after training (None: all).",
    )
    probes: Path | None = Field(
        None,
        description=(
            "JSONL of hand-written completions ({record fields..., completion, label}) scored by the "
            "trainer's own reward functions at every log step: probe/<label>/reward in rewards.csv."
        ),
    )
    # hardware
    precision: Precision = Field("auto", description="auto: bf16 on CUDA, fp32 on CPU.")
    gradient_checkpointing: bool | None = Field(None, description="None: on for CUDA, off on CPU.")
    # the reward
    rewards: RewardConfig = Field(default_factory=RewardConfig)

    @field_validator("target_modules")
    @classmethod
    def _non_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("target_modules is empty")
        return value

    @model_validator(mode="after")
    def _batches(self) -> GrpoConfig:
        generation_batch = self.per_device_train_batch_size * self.gradient_accumulation_steps
        if generation_batch % self.num_generations:
            raise ValueError(
                f"per_device_train_batch_size x gradient_accumulation_steps ({generation_batch}) must be a "
                f"multiple of num_generations ({self.num_generations}): a batch holds whole groups"
            )
        return self

    @classmethod
    def load(cls, path: Path | str | None = None) -> GrpoConfig:
        """Read a YAML/JSON file (default: the shipped ``configs/grpo.yaml``).

        A relative ``probes`` path is taken relative to the config file.

        Raises:
            ConfigError: naming the file when it is missing, unparsable or has invalid fields.
        """
        path = Path(path) if path is not None else DEFAULT_CONFIG
        data = read_mapping(path, "GRPO config")
        if data.get("probes") and not Path(data["probes"]).is_absolute():
            data["probes"] = str(path.parent / data["probes"])
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid GRPO config: {_errors(exc)}") from exc

    def with_overrides(self, **overrides: object) -> GrpoConfig:
        """A validated copy with some fields changed (``None`` values are ignored)."""
        data = {**self.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        try:
            return type(self).model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid GRPO option: {_errors(exc)}") from exc

    def resolve(self, device: str) -> GrpoConfig:
        """Fix precision, checkpointing and vLLM for ``device``; the length reward's limit too.

        Raises:
            ConfigError: bf16/fp16 or vLLM asked for without CUDA, or vLLM not installed.
        """
        cuda = device.startswith("cuda")
        precision = self.precision if self.precision != "auto" else ("bf16" if cuda else "fp32")
        if precision in ("bf16", "fp16") and not cuda:
            raise ConfigError(f"precision={precision} needs a CUDA device; this run is on {device}")
        has_vllm = importlib.util.find_spec("vllm") is not None
        use_vllm = (cuda and has_vllm) if self.use_vllm == "auto" else self.use_vllm
        if use_vllm and not (cuda and has_vllm):
            raise ConfigError(f"use_vllm=true needs CUDA and the vllm package (device {device}, vllm installed: {has_vllm})")
        checkpointing = cuda if self.gradient_checkpointing is None else self.gradient_checkpointing
        rewards = self.rewards.model_copy(update={"length_limit_tokens": self.max_completion_length})
        return self.model_copy(
            update={"precision": precision, "gradient_checkpointing": checkpointing, "use_vllm": use_vllm,
                    "rewards": rewards}
        )  # fmt: skip

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), allow_unicode=True, sort_keys=False)


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors())


__all__ = ["DEFAULT_CONFIG", "GrpoConfig", "Precision"]
