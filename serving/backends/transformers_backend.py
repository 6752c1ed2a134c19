"""The transformers backend: a local Qwen directory plus optional PEFT LoRA adapters, CPU or GPU.

The model is loaded once (``local_files_only=True``: nothing is ever downloaded) and shared by all
requests; a lock serialises generation, because one ``torch`` model generating in two threads
would interleave adapter switches and waste memory on two KV caches. Adapters are loaded next to
the base weights and switched by name, so a newly trained adapter can be activated in a running
service without reloading the base model.

Evaluation uses the same loaded model through two public methods, :meth:`~TransformersBackend.
generate_batch` (several prompts per ``generate`` call) and :meth:`~TransformersBackend.score_answers`
(the likelihood of a reference answer, for perplexity).

Deadlines stop generation through a :class:`~transformers.StoppingCriteria` checked after every
token; streaming runs ``generate`` in a thread feeding a
:class:`~transformers.TextIteratorStreamer`, and a client that stops reading cancels it the same way.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TextIteratorStreamer,
)

from kgqa.errors import ConfigError
from serving.backends.base import BackendConfig, Message, PromptedChatBackend, expired
from serving.backends.ngram import GeneratedNgramBlocker
from serving.backends.scoring import answer_token_ids
from serving.types import AnswerScore, Generation

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class _StopWhen(StoppingCriteria):
    """Stops every sequence once the deadline passes or the consumer cancelled."""

    def __init__(self, deadline: float | None, cancelled: threading.Event | None) -> None:
        self.deadline = deadline
        self.cancelled = cancelled

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        stop = (self.cancelled is not None and self.cancelled.is_set()) or expired(self.deadline)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class TransformersBackend(PromptedChatBackend):
    """Answers with a local causal LM through its tokenizer's chat template.

    Args:
        model_path: a local model directory (``config.json``, weights, tokenizer with a chat
            template), e.g. a Qwen2.5-Instruct snapshot or one built by ``training.tiny_base``.
        adapter_path: a PEFT LoRA adapter directory to load and activate at start.
        adapter_name: the name the start adapter is registered under.
        max_new_tokens: the most tokens per answer.
        temperature: 0 for greedy decoding, otherwise the sampling temperature.
        top_p: nucleus mass when sampling.
        no_repeat_ngram: ban repeating an n-gram of the answer itself (0 = off); see
            :class:`serving.backends.ngram.GeneratedNgramBlocker`.
        device: torch device; None picks ``cuda`` when available, else ``cpu``.
        dtype: ``auto`` (bfloat16 on CUDA, float32 on CPU) or an explicit dtype name.

    Raises:
        ConfigError: if the model or adapter directory cannot be loaded.
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
        no_repeat_ngram: int = 0,
        device: str | None = None,
        dtype: str = "auto",
    ) -> None:
        path = Path(model_path)
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"{path} is not a model directory (no config.json); set KGQA_BACKEND__MODEL_PATH"
            )
        self.base_name = path.resolve().name
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.no_repeat_ngram = no_repeat_ngram
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        else:
            torch_dtype = _DTYPES[dtype]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the model in {path}: {exc}") from exc
        if self.tokenizer.chat_template is None:
            raise ConfigError(f"the tokenizer in {path} has no chat template; use an instruct/chat model")
        self._model: Any = model.to(self.device).eval()
        pad = self.tokenizer.pad_token_id
        self._pad_token_id = pad if pad is not None else self.tokenizer.eos_token_id
        self._lock = threading.Lock()
        self._active: str | None = None
        if adapter_path is not None:
            self.load_adapter(adapter_path, adapter_name)
            self.set_adapter(adapter_name)

    @classmethod
    def from_config(cls, config: BackendConfig) -> TransformersBackend:
        if not config.model_path:
            raise ConfigError(
                "the transformers backend needs a model directory: set KGQA_BACKEND__MODEL_PATH"
            )
        return cls(
            config.model_path,
            adapter_path=config.adapter_path,
            adapter_name=config.adapter_name,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            no_repeat_ngram=config.no_repeat_ngram,
            device=config.device,
            dtype=config.dtype,
        )

    # --- adapters ---------------------------------------------------------------------------

    @property
    def model_id(self) -> str:
        """``base+adapter`` while an adapter is active, else the base model's directory name."""
        return f"{self.base_name}+{self._active}" if self._active else self.base_name

    @property
    def adapters(self) -> list[str]:
        """Names of the loaded adapters."""
        return list(getattr(self._model, "peft_config", {}))

    def load_adapter(self, path: str | Path, name: str) -> None:
        """Load a LoRA adapter next to the base weights without activating it.

        Raises:
            ConfigError: if the directory is not a PEFT adapter for this model, or the name is taken.
        """
        from peft import PeftModel

        with self._lock:
            if name in self.adapters:
                raise ConfigError(f"an adapter named {name!r} is already loaded; choose another name")
            try:
                if isinstance(self._model, PeftModel):
                    self._model.load_adapter(str(path), adapter_name=name)
                else:
                    self._model = PeftModel.from_pretrained(self._model, str(path), adapter_name=name)
            except (OSError, ValueError, RuntimeError) as exc:
                raise ConfigError(f"cannot load the LoRA adapter in {path}: {exc}") from exc
            self._model.eval()
            if self._active is not None:  # from_pretrained activates what it loads; keep ours
                self._model.set_adapter(self._active)

    def set_adapter(self, name: str | None) -> None:
        """Answer with the named adapter from now on, or with the base model when None.

        Raises:
            ConfigError: if no adapter of that name was loaded.
        """
        with self._lock:
            if name is not None:
                if name not in self.adapters:
                    raise ConfigError(f"no adapter named {name!r} is loaded (loaded: {self.adapters})")
                self._model.set_adapter(name)
            self._active = name

    # --- generation -------------------------------------------------------------------------

    def logits_processors(self, prompt_len: int) -> LogitsProcessorList:
        """The answer-only loop guard when ``no_repeat_ngram`` is on (also used by batch evaluation)."""
        if self.no_repeat_ngram:
            return LogitsProcessorList([GeneratedNgramBlocker(self.no_repeat_ngram, prompt_len)])
        return LogitsProcessorList()

    def generate_messages(
        self,
        messages: Sequence[Message],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generation:
        """Generate the assistant's reply to chat messages, rendered by the chat template as given.

        Returns what was generated when the deadline passes (nothing if it already had).
        """
        if expired(deadline):
            return Generation("", self.model_id)
        return self._run(messages, deadline, max_new_tokens, temperature)

    def stream_messages(
        self,
        messages: Sequence[Message],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """Text deltas of the reply; with greedy decoding they join to ``generate_messages``'s text.

        Generation runs in a thread; closing the iterator early cancels it after the next token.
        """
        if expired(deadline):
            return
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        cancelled = threading.Event()
        failure: list[BaseException] = []

        def work() -> None:
            try:
                self._run(messages, deadline, max_new_tokens, temperature, streamer, cancelled)
            except BaseException as exc:  # surfaced to the consumer below
                failure.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, name="kgqa-generate", daemon=True)
        thread.start()
        try:
            for text in streamer:
                if text:
                    yield text
        finally:
            cancelled.set()
            thread.join()
        if failure:
            raise failure[0]

    def generate_batch(
        self, conversations: Sequence[Sequence[Message]], *, max_new_tokens: int | None = None
    ) -> list[Generation]:
        """Greedy replies to several conversations in one ``generate`` call (left-padded batch).

        A batch of one is :meth:`generate_messages` at temperature 0, so batched and single
        answers agree.
        """
        if len(conversations) == 1:
            return [self._run(conversations[0], None, max_new_tokens, 0.0)]
        tok = self.tokenizer
        prompts = [
            tok.apply_chat_template(
                list(c), tokenize=False, add_generation_prompt=True, enable_thinking=False
            )
            for c in conversations
        ]
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        with self._lock:
            side, tok.padding_side = tok.padding_side, "left"  # decoder-only models pad on the left
            try:
                enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
                    self.device
                )
            finally:
                tok.padding_side = side
            width = enc["input_ids"].shape[1]
            model_id = self.model_id
            with torch.inference_mode(), self._adapter_scope():
                out = self._model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens or self.max_new_tokens,
                    logits_processor=self.logits_processors(width),
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=tok.pad_token_id,
                )
        eos = self._eos_ids()
        results = []
        for row, mask in zip(out[:, width:].tolist(), enc["attention_mask"].sum(dim=1).tolist(), strict=True):
            n = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
            text = tok.decode(row[:n], skip_special_tokens=True)
            results.append(Generation(text, model_id, prompt_tokens=int(mask), completion_tokens=n))
        return results

    def score_answers(self, items: Sequence[tuple[Sequence[Message], str]]) -> list[AnswerScore]:
        """The NLL of each answer (and its end-of-turn token) given its prompt, one forward pass each.

        An item whose prompt and answer exceed the model's context is not scored (``nll`` None).
        """
        limit = getattr(getattr(self._model, "config", None), "max_position_embeddings", None)
        scores = []
        for prompt, answer in items:
            p_ids, a_ids = answer_token_ids(self.tokenizer, prompt, answer)
            ids = p_ids + a_ids
            if limit and len(ids) > limit:
                scores.append(AnswerScore(None, len(a_ids)))
                continue
            input_ids = torch.tensor([ids], device=self.device)
            labels = input_ids.clone()
            labels[:, : len(p_ids)] = -100
            with self._lock, torch.inference_mode(), self._adapter_scope():
                loss = self._model(input_ids=input_ids, labels=labels).loss  # mean over the answer tokens
            scores.append(AnswerScore(float(loss) * len(a_ids), len(a_ids)))
        return scores

    def _adapter_scope(self) -> contextlib.AbstractContextManager[Any]:
        """Adapters switched off while the base model answers and some are loaded (hold the lock)."""
        if self._active is None and self.adapters:
            return self._model.disable_adapter()
        return contextlib.nullcontext()

    def _eos_ids(self) -> set[int]:
        eos = getattr(getattr(self._model, "generation_config", None), "eos_token_id", None)
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    def _run(
        self,
        messages: Sequence[Message],
        deadline: float | None,
        max_new_tokens: int | None,
        temperature: float | None,
        streamer: TextIteratorStreamer | None = None,
        cancelled: threading.Event | None = None,
    ) -> Generation:
        # enable_thinking=False: Qwen3 templates would otherwise open a <think> block; the answer
        # must be the cited text itself. Templates without the variable ignore it.
        prompt = self.tokenizer.apply_chat_template(
            list(messages), tokenize=False, add_generation_prompt=True, enable_thinking=False
        )
        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        temperature = self.temperature if temperature is None else temperature
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": self.top_p}
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        with self._lock, torch.inference_mode():
            model_id = self.model_id
            with self._adapter_scope():
                output = self._model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens or self.max_new_tokens,
                    stopping_criteria=StoppingCriteriaList([_StopWhen(deadline, cancelled)]),
                    pad_token_id=self._pad_token_id,
                    streamer=streamer,
                    logits_processor=self.logits_processors(inputs["input_ids"].shape[1]),
                    **sampling,
                )
        prompt_len = inputs["input_ids"].shape[1]
        new_tokens = output[0, prompt_len:]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        return Generation(
            text, model_id, prompt_tokens=prompt_len, completion_tokens=int(new_tokens.shape[0])
        )


__all__ = ["TransformersBackend"]
