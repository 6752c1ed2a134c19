"""How a model is evaluated: which metrics, how answers are generated, how the composite is weighed.

Loaded from YAML (``training/configs/eval.yaml`` documents every field); the CLI's flags override
the file. The AHP matrix is checked when the config is loaded, so an inconsistent matrix stops
``kgqa eval`` before any model is loaded, with the file and the CR in the message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kgqa.errors import ConfigError
from training.config_files import read_mapping
from training.metrics.ahp import CR_LIMIT, AhpResult, checked_weights

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "eval.yaml"

MetricName = Literal[
    "key_facts",
    "token_f1",
    "bleu",
    "rouge_l",
    "semantic",
    "perplexity",
    "citations",
    "verification",
    "latency",
]
ALL_METRICS: tuple[str, ...] = MetricName.__args__  # type: ignore[attr-defined]

#: Aggregates a composite criterion may name (every one is a number in metrics.json's aggregates).
AGGREGATES = (
    "key_fact_accuracy",
    "token_f1",
    "bleu",
    "sentence_bleu",
    "rouge_l",
    "semantic_similarity",
    "perplexity",
    "citation_precision",
    "citation_recall",
    "citation_f1",
    "hallucination_rate",
    "mean_unsupported_atoms",
    "verified_rate",
    "correct_refusal_rate",
    "false_refusal_rate",
    "latency_mean_s",
    "tokens_per_second",
)


class GenerationConfig(BaseModel):
    """How answers are generated: greedy, from the record's own system + user messages."""

    model_config = ConfigDict(extra="forbid")

    #: ``auto``: vLLM when CUDA and vllm are present, else transformers
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    max_new_tokens: int = Field(256, gt=0)
    #: transformers: ban repeating an n-gram of the answer itself (0 = off); the same for every
    #: model compared. Tiny models loop under greedy decoding; prompt words stay quotable.
    no_repeat_ngram: int = Field(0, ge=0)
    #: prompts per generate call; latency per answer is the wall time of its call (1 = true latency)
    batch_size: int = Field(1, gt=0)
    #: torch device for transformers (None: cuda when available, else cpu)
    device: str | None = None
    #: transformers weights dtype; ``auto`` = bfloat16 on CUDA, float32 on CPU
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    #: vLLM: share of GPU memory, longest prompt + answer, largest LoRA rank
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)
    max_model_len: int | None = None
    max_lora_rank: int = 64


class Criterion(BaseModel):
    """One composite criterion: an aggregate, mapped to ``[0, 1]`` with higher = better.

    ``score = clip((value / scale - floor) / (1 - floor), 0, 1)``, then ``1 - score`` when
    ``invert`` (rates where lower is better: hallucination, false refusals). ``reciprocal`` maps
    a lower-is-better unbounded value such as perplexity to ``1 / value`` first.
    """

    model_config = ConfigDict(extra="forbid")

    metric: str
    invert: bool = False
    reciprocal: bool = False
    scale: float = Field(1.0, gt=0)
    floor: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _known(self) -> Criterion:
        if self.metric not in AGGREGATES:
            raise ValueError(f"unknown composite metric {self.metric!r}; known: {', '.join(AGGREGATES)}")
        return self

    def normalize(self, value: float) -> float:
        x = 1.0 / value if self.reciprocal else value
        x = (x / self.scale - self.floor) / (1.0 - self.floor)
        x = min(max(x, 0.0), 1.0)
        return 1.0 - x if self.invert else x


class CompositeConfig(BaseModel):
    """The AHP criteria (in matrix order) and their pairwise-comparison matrix (Saaty 1-9)."""

    model_config = ConfigDict(extra="forbid")

    criteria: list[Criterion]
    matrix: list[list[float | str]]
    cr_limit: float = CR_LIMIT

    @model_validator(mode="after")
    def _shape(self) -> CompositeConfig:
        n = len(self.criteria)
        if len(self.matrix) != n or any(len(row) != n for row in self.matrix):
            raise ValueError(f"the AHP matrix must be {n}x{n}, one row and column per criterion")
        return self


class EvalConfig(BaseModel):
    """Everything ``kgqa eval`` reads besides the model and the data."""

    model_config = ConfigDict(extra="forbid")

    metrics: list[MetricName] = Field(default_factory=lambda: list(ALL_METRICS))
    #: a kgqa model folder or sentence-transformers directory; None = bge-small-zh-v1.5 ($KGQA_HOME/models)
    semantic_model: str | None = None
    #: the verifier's sentence-support threshold (kg.verifier.Verifier)
    support_threshold: float = Field(0.5, ge=0, le=1)
    #: evaluate the first N records of each test set (None: all)
    limit: int | None = Field(None, gt=0)
    #: bootstrap resamples and confidence level of the per-metric intervals (training/metrics/bootstrap.py)
    bootstrap_samples: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    composite: CompositeConfig
    #: where the config was read from (named in errors); not part of the file
    source: str | None = Field(None, exclude=True)

    @classmethod
    def load(cls, path: Path | None = None) -> EvalConfig:
        """The config in ``path`` (default: the shipped ``configs/eval.yaml``), AHP matrix checked.

        Raises:
            ConfigError: unreadable file, invalid fields, or an AHP matrix with CR above the limit.
        """
        path = path or DEFAULT_CONFIG
        data = read_mapping(path, "eval config")
        try:
            config = cls.model_validate({**data, "source": str(path)})
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid eval config: {exc}") from exc
        config.ahp()  # reject an inconsistent matrix now, before any model is loaded
        return config

    def ahp(self) -> AhpResult:
        """The AHP weights of the composite criteria.

        Raises:
            ConfigError: CR above ``composite.cr_limit`` (naming the config file and the CR).
        """
        return checked_weights(self.composite.matrix, self.source or "eval config", self.composite.cr_limit)


__all__ = [
    "AGGREGATES",
    "ALL_METRICS",
    "DEFAULT_CONFIG",
    "CompositeConfig",
    "Criterion",
    "EvalConfig",
    "GenerationConfig",
]
