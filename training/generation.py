"""Batch answer generation and reference scoring for evaluation, over a loaded model.

Evaluation must answer with exactly what the service would load: a local model directory plus an
optional PEFT LoRA adapter. The composition root loads it with the serving backends
(``kgqa.wiring.build_generator``: ``TransformersBackend`` on CPU or GPU, ``VllmBackend`` with the
adapter as a ``LoRARequest``) and hands it here; this module only needs the public batch API those
backends offer (:class:`BatchModel`: ``generate_batch``, ``score_answers``), so ``training`` does
not import ``serving``. It adds what evaluation needs on top: the wall time of each call and the
report's model description.

Decoding is greedy (temperature 0), so a report is reproducible. Prompts are the records' own
system + user messages rendered by the tokenizer's chat template with ``add_generation_prompt``
(and ``enable_thinking=False`` for Qwen3 templates, as the backends do).

Perplexity counts the assistant's tokens only: the reference answer tokenized after the rendered
prompt, followed by the turn's end token (``<|im_end|>`` for ChatML, else the EOS), because a
model that has learnt the answer also knows where it stops.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import structlog

from kgqa.errors import ConfigError

log = structlog.get_logger(__name__)

Message = dict[str, str]
Conversation = Sequence[Message]


@dataclass
class Completion:
    """One generated answer and what it cost.

    ``latency_s`` is the wall time of the generate call the answer was part of (with a batch of
    one, the answer's own latency).
    """

    text: str
    completion_tokens: int
    prompt_tokens: int
    latency_s: float


@dataclass
class ReferenceScore:
    """Summed negative log-likelihood (nats) of a reference's tokens; None when it did not fit."""

    nll: float | None
    tokens: int

    @property
    def perplexity(self) -> float | None:
        return math.exp(self.nll / self.tokens) if self.nll is not None and self.tokens else None


@dataclass
class ModelInfo:
    """Which model answered: written into metrics.json and every prediction."""

    base: str
    adapter: str | None
    model_id: str
    backend: str
    provenance: dict[str, Any] = field(default_factory=dict)


class Generator(Protocol):
    """What :class:`training.evaluate.EvalRunner` needs from a model."""

    info: ModelInfo

    def generate(self, conversations: Sequence[Conversation]) -> list[Completion]:
        """Greedy answers to each conversation (system + user messages), in order."""
        ...

    def score_references(self, items: Sequence[tuple[Conversation, str]]) -> list[ReferenceScore]:
        """The NLL of each answer given its prompt messages (assistant tokens only)."""
        ...


def resolve_adapter(run_dir: str | Path) -> Path:
    """The PEFT adapter directory of a training run (the run folder itself or its ``adapter/``).

    Raises:
        ConfigError: neither holds an ``adapter_config.json``.
    """
    run = Path(run_dir)
    for candidate in (run, run / "adapter"):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise ConfigError(f"{run}: no PEFT adapter here (no adapter_config.json in it or in {run / 'adapter'})")


def _provenance(run_dir: Path | None) -> dict[str, Any]:
    import json

    if run_dir is None:
        return {}
    for path in (run_dir / "provenance.json", run_dir.parent / "provenance.json"):
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            return data if isinstance(data, dict) else {}
    return {}


class _Generated(Protocol):
    text: str
    prompt_tokens: int
    completion_tokens: int


class _Scored(Protocol):
    nll: float | None
    tokens: int


class BatchModel(Protocol):
    """What :class:`ModelGenerator` needs from a loaded model (the local serving backends' public
    batch API)."""

    model_id: str

    def generate_batch(
        self, conversations: Sequence[Conversation], *, max_new_tokens: int | None = None
    ) -> Sequence[_Generated]: ...

    def score_answers(self, items: Sequence[tuple[Conversation, str]]) -> Sequence[_Scored]: ...


def adapter_name(run_dir: str | Path) -> str:
    """The name an adapter of a training run is loaded under (the run folder's name)."""
    name = Path(run_dir).resolve().name
    return name if name != "adapter" else Path(run_dir).resolve().parent.name


def model_info(base: str | Path, adapter: str | Path | None, model_id: str, backend: str) -> ModelInfo:
    """The report's description of a model: base, adapter directory, id, backend, provenance."""
    adapter_dir = resolve_adapter(adapter) if adapter is not None else None
    return ModelInfo(
        base=str(Path(base).resolve()),
        adapter=str(adapter_dir.resolve()) if adapter_dir else None,
        model_id=model_id,
        backend=backend,
        provenance=_provenance(Path(adapter)) if adapter is not None else {},
    )


class ModelGenerator:
    """A :class:`Generator` over a loaded model's batch API.

    Args:
        model: the loaded model (built by the composition root).
        info: what the report says about it (:func:`model_info`).
        max_new_tokens: the most tokens per answer.
    """

    def __init__(self, model: BatchModel, info: ModelInfo, max_new_tokens: int) -> None:
        self.model = model
        self.info = info
        self.max_new_tokens = max_new_tokens

    def generate(self, conversations: Sequence[Conversation]) -> list[Completion]:
        start = time.perf_counter()
        generated = self.model.generate_batch(conversations, max_new_tokens=self.max_new_tokens)
        elapsed = time.perf_counter() - start
        return [Completion(g.text, g.completion_tokens, g.prompt_tokens, elapsed) for g in generated]

    def score_references(self, items: Sequence[tuple[Conversation, str]]) -> list[ReferenceScore]:
        scores = [ReferenceScore(s.nll, s.tokens) for s in self.model.score_answers(items)]
        skipped = sum(s.nll is None for s in scores)
        if skipped:
            log.warning(
                "perplexity_skipped", reason="prompt + reference longer than the model's context", items=skipped
            )
        return scores


def vllm_available() -> bool:
    """CUDA and the vllm package are both present."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


__all__ = [
    "BatchModel",
    "Completion",
    "Generator",
    "ModelGenerator",
    "ModelInfo",
    "ReferenceScore",
    "adapter_name",
    "model_info",
    "resolve_adapter",
    "vllm_available",
]
