"""Settings of an incremental retrain: the single surface ``kgqa retrain`` and the job API fill in.

Loaded from YAML (``training/configs/retrain.yaml`` documents every field; ``retrain-tiny.yaml``
is the offline tiny model's). The paths to the dataset, SFT and evaluation configs are resolved
relative to the file that names them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kgqa.errors import ConfigError
from training.config_files import read_mapping

CONFIGS = Path(__file__).resolve().parent / "configs"
DEFAULT_CONFIG = CONFIGS / "retrain.yaml"

Direction = Literal["higher", "lower"]


class GateConfig(BaseModel):
    """The regression gate: the new model may not be worse than the active one by more than ``margin``.

    Each metric is an aggregate of ``kgqa eval`` (``metrics.json``) with the direction in which it
    is better; it is compared on every old test set the active model's dataset has.
    """

    model_config = ConfigDict(extra="forbid")

    margin: float = Field(0.05, description="Largest allowed loss on any gated metric (absolute).")
    metrics: dict[str, Direction] = Field(
        default_factory=lambda: {
            "key_fact_accuracy": "higher",
            "token_f1": "higher",
            "hallucination_rate": "lower",
        },
        description="Aggregate name -> the direction in which it is better.",
    )


class RetrainConfig(BaseModel):
    """How an incremental retrain regenerates, trains, evaluates and decides."""

    model_config = ConfigDict(extra="forbid")

    dataset_config: Path = Field(CONFIGS / "dataset.yaml", description="Dataset builder config.")
    sft_config: Path = Field(CONFIGS / "sft.yaml", description="SFT config the adapter is continued with.")
    eval_config: Path = Field(CONFIGS / "eval.yaml", description="Evaluation config (generation, metrics).")
    sft: dict[str, Any] = Field(
        default_factory=dict, description="Overrides of the SFT config's fields (e.g. max_length for a base)."
    )
    replay_ratio: float = Field(
        4.0,
        ge=0,
        description=(
            "Old training pairs replayed per regenerated pair (against forgetting). On the tiny model"
            " (bench/bench_retrain.py) 1.0 halved the old paraphrase set's token F1; 4.0 kept most"
            " of it and the job stayed ~8x cheaper than a full retrain."
        ),
    )
    replay_min: int = Field(
        8, ge=0, description="At least this many replayed pairs when the old set has them."
    )
    epochs: float = Field(
        4.0, gt=0, description="Epochs over the delta + replay set (the steps grow with the change)."
    )
    max_steps: int = Field(-1, description="Cap on optimizer steps; -1: epochs decide.")
    save_steps: int = Field(10, ge=1, description="Checkpoint every N steps: where a killed worker resumes.")
    eval_limit: int | None = Field(
        32, gt=0, description="Records evaluated per test set (both models); None = all."
    )
    eval_max_new_tokens: int | None = Field(
        None, gt=0, description="Overrides the eval config's answer length."
    )
    gate: GateConfig = Field(default_factory=GateConfig)
    auto_activate: bool = Field(True, description="Activate the new model when the gate passes.")
    seed: int = Field(13, description="Seeds the replay sample.")
    poll_s: float = Field(2.0, gt=0, description="Seconds between checks of a busy trainer lock.")
    source: str | None = Field(None, exclude=True, description="The file it was loaded from.")

    @classmethod
    def load(cls, path: Path | None = None) -> RetrainConfig:
        """The config in ``path`` (default: the shipped ``configs/retrain.yaml``).

        Raises:
            ConfigError: naming the file when it is missing, unparsable or has invalid fields.
        """
        path = Path(path or DEFAULT_CONFIG)
        data = read_mapping(path, "retrain config")
        for key in ("dataset_config", "sft_config", "eval_config"):
            if data.get(key) and not Path(data[key]).is_absolute():
                data[key] = str(path.parent / data[key])
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid retrain config: {exc}") from exc
        config.source = str(path)
        return config

    def with_overrides(self, **overrides: object) -> RetrainConfig:
        """A validated copy with some fields changed (``None`` values are ignored)."""
        data = {**self.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
        try:
            config = type(self).model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"invalid retrain option: {exc}") from exc
        config.source = self.source
        return config


__all__ = ["DEFAULT_CONFIG", "Direction", "GateConfig", "RetrainConfig"]
