"""The vLLM backend: GPU serving of a local Qwen with any number of LoRA adapters (multi-LoRA).

vLLM is imported when the backend is built, never at module import, so this module (and the
package) import on machines without vLLM or a GPU; tests that need it are marked ``gpu``.

Adapters are not merged into the base: each request names its adapter through a
``LoRARequest(name, int_id, path)`` and vLLM loads it on first use, keeping several in GPU memory
(``max_lora_rank`` reserves room for the largest). Switching the active adapter is therefore free.

Evaluation uses the same engine through :meth:`VllmBackend.generate_batch` (one ``LLM.chat`` call
for many prompts) and :meth:`VllmBackend.score_answers` (prompt logprobs, for perplexity).

Limits of the offline ``vllm.LLM`` engine, documented rather than hidden:

* ``stream`` generates the whole answer, then yields it once: the offline engine returns finished
  requests only. Token streaming in production comes from vLLM's own OpenAI-compatible server
  (``vllm serve --enable-lora``) used through the ``openai`` backend.
* The deadline is checked before generation starts; once started, a request runs to
  ``max_new_tokens`` (vLLM generates fast enough that this bounds the overrun).
* ``LLM`` is not thread-safe, so requests are serialised by a lock; for concurrent batching,
  again, use vLLM's server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kgqa.errors import ConfigError
from serving.backends.base import BackendConfig, Message, PromptedChatBackend, expired
from serving.backends.scoring import answer_token_ids
from serving.types import AnswerScore, Generation


class VllmBackend(PromptedChatBackend):
    """Answers with ``vllm.LLM.chat`` over a local model directory, with LoRA adapters by name.

    Args:
        model_path: the local model directory.
        adapter_path: a LoRA adapter to load and activate at start.
        adapter_name: its name.
        max_new_tokens: ``SamplingParams.max_tokens``.
        temperature: 0 for greedy decoding.
        top_p: nucleus mass when sampling.
        max_lora_rank: the largest adapter rank to reserve memory for.
        gpu_memory_utilization: share of GPU memory vLLM may take.
        tensor_parallel_size: GPUs to split the model over.
        max_model_len: longest prompt + answer; None uses the model's own.

    Raises:
        ConfigError: if vLLM is not installed or the model directory is missing.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        adapter_path: str | Path | None = None,
        adapter_name: str = "default",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_lora_rank: int = 64,
        gpu_memory_utilization: float = 0.9,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
    ) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ConfigError(
                "the vllm backend needs vLLM: pip install 'kgqa[gpu]' on a CUDA machine"
            ) from exc
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"{path} is not a model directory (no config.json); set KGQA_BACKEND__MODEL_PATH")
        self._vllm = vllm
        self.base_name = path.resolve().name
        self.max_model_len = max_model_len
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        engine_args: dict[str, Any] = {
            "model": str(path),
            "enable_lora": True,
            "max_lora_rank": max_lora_rank,
            "gpu_memory_utilization": gpu_memory_utilization,
            "tensor_parallel_size": tensor_parallel_size,
        }
        if max_model_len is not None:
            engine_args["max_model_len"] = max_model_len
        self._llm = vllm.LLM(**engine_args)
        self._lock = threading.Lock()
        self._adapters: dict[str, Any] = {}
        self._active: str | None = None
        if adapter_path is not None:
            self.load_adapter(adapter_path, adapter_name)
            self.set_adapter(adapter_name)

    @classmethod
    def from_config(cls, config: BackendConfig) -> VllmBackend:
        if not config.model_path:
            raise ConfigError("the vllm backend needs a model directory: set KGQA_BACKEND__MODEL_PATH")
        return cls(
            config.model_path,
            adapter_path=config.adapter_path,
            adapter_name=config.adapter_name,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            max_lora_rank=config.max_lora_rank,
            gpu_memory_utilization=config.gpu_memory_utilization,
            tensor_parallel_size=config.tensor_parallel_size,
            max_model_len=config.max_model_len,
        )

    @property
    def model_id(self) -> str:
        return f"{self.base_name}+{self._active}" if self._active else self.base_name

    @property
    def adapters(self) -> list[str]:
        return list(self._adapters)

    def load_adapter(self, path: str | Path, name: str) -> None:
        """Register an adapter (vLLM loads its weights on the first request that uses it)."""
        from vllm.lora.request import LoRARequest

        if not (Path(path) / "adapter_config.json").is_file():
            raise ConfigError(f"{path} is not a PEFT adapter directory (no adapter_config.json)")
        with self._lock:
            if name in self._adapters:
                raise ConfigError(f"an adapter named {name!r} is already loaded; choose another name")
            # vLLM identifies adapters by a positive integer unique for the engine's lifetime.
            self._adapters[name] = LoRARequest(name, len(self._adapters) + 1, str(Path(path).resolve()))

    def set_adapter(self, name: str | None) -> None:
        """Answer with the named adapter from now on, or with the base model when None."""
        with self._lock:
            if name is not None and name not in self._adapters:
                raise ConfigError(f"no adapter named {name!r} is loaded (loaded: {self.adapters})")
            self._active = name

    def generate_messages(
        self,
        messages: Sequence[Message],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generation:
        if expired(deadline):
            return Generation("", self.model_id)
        params = self._vllm.SamplingParams(
            max_tokens=max_new_tokens or self.max_new_tokens,
            temperature=self.temperature if temperature is None else temperature,
            top_p=self.top_p,
        )
        with self._lock:
            model_id = self.model_id
            lora = self._adapters.get(self._active) if self._active else None
            outputs = self._llm.chat(
                list(messages),
                params,
                use_tqdm=False,
                lora_request=lora,
                # as in the transformers backend: no <think> block from Qwen3 templates
                chat_template_kwargs={"enable_thinking": False},
            )
        result = outputs[0]
        completion = result.outputs[0]
        return Generation(
            completion.text,
            model_id,
            prompt_tokens=len(result.prompt_token_ids or ()),
            completion_tokens=len(completion.token_ids),
        )

    def generate_batch(
        self, conversations: Sequence[Sequence[Message]], *, max_new_tokens: int | None = None
    ) -> list[Generation]:
        """Greedy replies to several conversations in one ``LLM.chat`` call (vLLM batches them)."""
        params = self._vllm.SamplingParams(max_tokens=max_new_tokens or self.max_new_tokens, temperature=0.0)
        with self._lock:
            model_id = self.model_id
            outputs = self._llm.chat(
                [list(c) for c in conversations],
                params,
                use_tqdm=False,
                lora_request=self._lora(),
                chat_template_kwargs={"enable_thinking": False},
            )
        return [
            Generation(
                o.outputs[0].text,
                model_id,
                prompt_tokens=len(o.prompt_token_ids or ()),
                completion_tokens=len(o.outputs[0].token_ids),
            )
            for o in outputs
        ]

    def score_answers(self, items: Sequence[tuple[Sequence[Message], str]]) -> list[AnswerScore]:
        """The NLL of each answer given its prompt, from vLLM's prompt logprobs in one call.

        An item whose prompt and answer do not fit the engine's context is not scored (``nll`` None).
        """
        from vllm.inputs import TokensPrompt

        tok = self._llm.get_tokenizer()
        encoded = [answer_token_ids(tok, prompt, answer) for prompt, answer in items]
        limit = _engine_max_len(self._llm) or self.max_model_len
        fits = [i for i, (p, a) in enumerate(encoded) if not limit or len(p) + len(a) < limit]
        # prompt_logprobs=1 returns, per prompt position, the actual token's logprob (plus the top 1)
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        with self._lock:
            outputs = self._llm.generate(
                [TokensPrompt(prompt_token_ids=encoded[i][0] + encoded[i][1]) for i in fits],
                params,
                use_tqdm=False,
                lora_request=self._lora(),
            )
        scores = [AnswerScore(None, len(a)) for _, a in encoded]
        for i, out in zip(fits, outputs, strict=True):
            p_ids, a_ids = encoded[i]
            ids = p_ids + a_ids
            logprobs = out.prompt_logprobs
            nll = -sum(logprobs[pos][ids[pos]].logprob for pos in range(len(p_ids), len(ids)))
            scores[i] = AnswerScore(float(nll), len(a_ids))
        return scores

    def _lora(self) -> Any:
        """The active adapter's ``LoRARequest``, or None for the base model."""
        return self._adapters.get(self._active) if self._active else None

    def stream_messages(
        self,
        messages: Sequence[Message],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """The whole reply as one delta: the offline engine has no incremental output."""
        generation = self.generate_messages(
            messages, deadline=deadline, max_new_tokens=max_new_tokens, temperature=temperature
        )
        if generation.text:
            yield generation.text


def _engine_max_len(llm: Any) -> int | None:
    try:
        return int(llm.llm_engine.model_config.max_model_len)
    except (AttributeError, TypeError, ValueError):
        return None


__all__ = ["VllmBackend"]
