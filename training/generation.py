"""Batch answer generation and reference scoring for evaluation, over the serving backends' loaders.

Evaluation must answer with exactly what the service would load: a local model directory plus an
optional PEFT LoRA adapter. So the model is loaded by :class:`serving.backends.TransformersBackend`
(CPU or GPU) or :class:`serving.backends.VllmBackend` (CUDA + vllm, the adapter as a
``LoRARequest``), and this module adds what evaluation needs on top: several prompts per call
(left-padded batches for transformers, one ``LLM.chat`` call for vLLM), the wall time of each
call, and the log-likelihood of a reference answer given its prompt (for perplexity).

Decoding is greedy (temperature 0), so a report is reproducible. Prompts are the records' own
system + user messages rendered by the tokenizer's chat template with ``add_generation_prompt``
(and ``enable_thinking=False`` for Qwen3 templates, as the backends do).

Perplexity counts the assistant's tokens only: the reference answer tokenized after the rendered
prompt, followed by the turn's end token (``<|im_end|>`` for ChatML, else the EOS), because a
model that has learnt the answer also knows where it stops.

The backends keep their model objects private; the two accessors below (``_torch_model``,
``_vllm_engine``) are the one place that reaches into them.
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
from training.eval_config import GenerationConfig

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


def _adapter_name(run_dir: Path) -> str:
    name = run_dir.resolve().name
    return name if name != "adapter" else run_dir.resolve().parent.name


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


def _answer_ids(tokenizer: Any, prompt: Conversation, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of the rendered prompt and of the answer + end-of-turn token."""
    text = tokenizer.apply_chat_template(
        list(prompt), tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    answer_ids = list(tokenizer(answer, add_special_tokens=False)["input_ids"])
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if end is None or end == tokenizer.unk_token_id:
        end = tokenizer.eos_token_id
    if end is not None:
        answer_ids.append(int(end))
    return list(prompt_ids), answer_ids


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


class TransformersGenerator:
    """Generation on CPU or GPU with transformers, loaded by the serving TransformersBackend.

    Args:
        base: the local base model directory.
        adapter: a training run folder (or adapter folder) with a PEFT LoRA adapter, or None.
        config: generation settings (``max_new_tokens``, ``batch_size``, ``device``, ``dtype``).
    """

    def __init__(
        self, base: str | Path, adapter: str | Path | None = None, config: GenerationConfig | None = None
    ):
        from serving.backends.transformers_backend import TransformersBackend

        self.config = config or GenerationConfig()
        adapter_dir = resolve_adapter(adapter) if adapter is not None else None
        self.backend = TransformersBackend(
            base,
            adapter_path=adapter_dir,
            adapter_name=_adapter_name(Path(adapter)) if adapter is not None else "default",
            max_new_tokens=self.config.max_new_tokens,
            temperature=0.0,
            no_repeat_ngram=self.config.no_repeat_ngram,
            device=self.config.device,
            dtype=self.config.dtype,
        )
        self.info = ModelInfo(
            base=str(Path(base).resolve()),
            adapter=str(adapter_dir.resolve()) if adapter_dir else None,
            model_id=self.backend.model_id,
            backend="transformers",
            provenance=_provenance(Path(adapter)) if adapter is not None else {},
        )

    def _torch_model(self) -> Any:
        return self.backend._model  # the backend's loaded model (PeftModel when an adapter is on)

    def generate(self, conversations: Sequence[Conversation]) -> list[Completion]:
        if len(conversations) == 1:
            start = time.perf_counter()
            g = self.backend.generate_messages(list(conversations[0]))
            return [Completion(g.text, g.completion_tokens, g.prompt_tokens, time.perf_counter() - start)]
        return self._generate_batch(conversations)

    def _generate_batch(self, conversations: Sequence[Conversation]) -> list[Completion]:
        import torch

        tok, model = self.backend.tokenizer, self._torch_model()
        prompts = [
            tok.apply_chat_template(
                list(c), tokenize=False, add_generation_prompt=True, enable_thinking=False
            )
            for c in conversations
        ]
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        side, tok.padding_side = tok.padding_side, "left"  # decoder-only models pad on the left
        try:
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
                self.backend.device
            )
        finally:
            tok.padding_side = side
        eos = _eos_ids(model, tok)
        start = time.perf_counter()
        with self.backend._lock, torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=self.config.max_new_tokens,
                logits_processor=self.backend.logits_processors(enc["input_ids"].shape[1]),
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
            )
        elapsed = time.perf_counter() - start
        width = enc["input_ids"].shape[1]
        results = []
        for row, mask in zip(out[:, width:].tolist(), enc["attention_mask"].sum(dim=1).tolist(), strict=True):
            n = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
            text = tok.decode(row[:n], skip_special_tokens=True)
            results.append(Completion(text, n, int(mask), elapsed))
        return results

    def score_references(self, items: Sequence[tuple[Conversation, str]]) -> list[ReferenceScore]:
        import torch

        tok, model = self.backend.tokenizer, self._torch_model()
        limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        scores = []
        for prompt, answer in items:
            p_ids, a_ids = _answer_ids(tok, prompt, answer)
            ids = p_ids + a_ids
            if limit and len(ids) > limit:
                log.warning(
                    "perplexity_skipped",
                    reason="prompt + reference longer than the model's context",
                    tokens=len(ids),
                    limit=limit,
                )
                scores.append(ReferenceScore(None, len(a_ids)))
                continue
            input_ids = torch.tensor([ids], device=self.backend.device)
            labels = input_ids.clone()
            labels[:, : len(p_ids)] = -100
            with self.backend._lock, torch.inference_mode():
                loss = model(input_ids=input_ids, labels=labels).loss  # mean over the answer tokens
            scores.append(ReferenceScore(float(loss) * len(a_ids), len(a_ids)))
        return scores


class VllmGenerator:
    """Generation with vLLM on CUDA; the adapter goes with every request as a ``LoRARequest``.

    Args:
        base: the local base model directory.
        adapter: a training run folder (or adapter folder) with a PEFT LoRA adapter, or None.
        config: generation settings (``max_new_tokens``, vLLM memory and length limits).
    """

    def __init__(
        self, base: str | Path, adapter: str | Path | None = None, config: GenerationConfig | None = None
    ):
        from serving.backends.vllm_backend import VllmBackend

        self.config = config or GenerationConfig()
        adapter_dir = resolve_adapter(adapter) if adapter is not None else None
        self.backend = VllmBackend(
            base,
            adapter_path=adapter_dir,
            adapter_name=_adapter_name(Path(adapter)) if adapter is not None else "default",
            max_new_tokens=self.config.max_new_tokens,
            temperature=0.0,
            max_lora_rank=self.config.max_lora_rank,
            gpu_memory_utilization=self.config.gpu_memory_utilization,
            max_model_len=self.config.max_model_len,
        )
        self.info = ModelInfo(
            base=str(Path(base).resolve()),
            adapter=str(adapter_dir.resolve()) if adapter_dir else None,
            model_id=self.backend.model_id,
            backend="vllm",
            provenance=_provenance(Path(adapter)) if adapter is not None else {},
        )

    def _vllm_engine(self) -> tuple[Any, Any]:
        """The backend's ``vllm.LLM`` and the active adapter's ``LoRARequest`` (None: base)."""
        b = self.backend
        return b._llm, (b._adapters.get(b._active) if b._active else None)

    def generate(self, conversations: Sequence[Conversation]) -> list[Completion]:
        llm, lora = self._vllm_engine()
        params = self.backend._vllm.SamplingParams(
            max_tokens=self.config.max_new_tokens,
            temperature=0.0,
        )
        start = time.perf_counter()
        with self.backend._lock:
            outputs = llm.chat(
                [list(c) for c in conversations],
                params,
                use_tqdm=False,
                lora_request=lora,
                chat_template_kwargs={"enable_thinking": False},
            )
        elapsed = time.perf_counter() - start
        return [
            Completion(o.outputs[0].text, len(o.outputs[0].token_ids), len(o.prompt_token_ids or ()), elapsed)
            for o in outputs
        ]

    def score_references(self, items: Sequence[tuple[Conversation, str]]) -> list[ReferenceScore]:
        from vllm.inputs import TokensPrompt

        llm, lora = self._vllm_engine()
        tok = llm.get_tokenizer()
        encoded = [_answer_ids(tok, prompt, answer) for prompt, answer in items]
        limit = _engine_max_len(llm) or self.config.max_model_len
        fits = [i for i, (p, a) in enumerate(encoded) if not limit or len(p) + len(a) < limit]
        # prompt_logprobs=1 returns, per prompt position, the actual token's logprob (plus the top 1)
        params = self.backend._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        with self.backend._lock:
            outputs = llm.generate(
                [TokensPrompt(prompt_token_ids=encoded[i][0] + encoded[i][1]) for i in fits],
                params,
                use_tqdm=False,
                lora_request=lora,
            )
        scores = [ReferenceScore(None, len(a)) for _, a in encoded]
        for i, out in zip(fits, outputs, strict=True):
            p_ids, a_ids = encoded[i]
            ids = p_ids + a_ids
            logprobs = out.prompt_logprobs
            nll = -sum(logprobs[pos][ids[pos]].logprob for pos in range(len(p_ids), len(ids)))
            scores[i] = ReferenceScore(float(nll), len(a_ids))
        return scores


def _engine_max_len(llm: Any) -> int | None:
    try:
        return int(llm.llm_engine.model_config.max_model_len)
    except (AttributeError, TypeError, ValueError):
        return None


def vllm_available() -> bool:
    """CUDA and the vllm package are both present."""
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


def build_generator(
    base: str | Path, adapter: str | Path | None = None, config: GenerationConfig | None = None
) -> Generator:
    """The generator ``config.backend`` asks for (``auto``: vLLM on CUDA when installed).

    Raises:
        ConfigError: the model or adapter cannot be loaded, or vLLM was asked for and is missing.
    """
    config = config or GenerationConfig()
    kind = config.backend
    if kind == "auto":
        kind = "vllm" if vllm_available() else "transformers"
    log.info("eval_generator", backend=kind, base=str(base), adapter=str(adapter) if adapter else None)
    if kind == "vllm":
        return VllmGenerator(base, adapter, config)
    return TransformersGenerator(base, adapter, config)


__all__ = [
    "Completion",
    "Generator",
    "ModelInfo",
    "ReferenceScore",
    "TransformersGenerator",
    "VllmGenerator",
    "build_generator",
    "resolve_adapter",
    "vllm_available",
]
