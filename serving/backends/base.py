"""The answer-backend contract and its one configuration surface.

An answer backend turns a question and the retrieved clauses into text carrying ``[[CLAUSE_ID]]``
markers; the service verifies that text afterwards, so a backend never decides what is true.
Backends that run a chat model also accept raw chat messages (:class:`ChatBackend`), which the
OpenAI-compatible route and dataset generation use to send prompts through unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import field
from typing import Literal, Protocol, runtime_checkable

from pydantic.dataclasses import dataclass

from kg.prompting import build_messages
from serving.types import AnswerScore, Generation, RetrievedClause

BackendKind = Literal["extractive", "transformers", "vllm", "openai"]
Message = dict[str, str]


@runtime_checkable
class AnswerBackend(Protocol):
    """Generates an answer with citation markers from retrieved clauses.

    ``deadline`` is an absolute :func:`time.monotonic` value: when it passes, generation stops
    and what was produced so far is returned (possibly nothing); the service decides what a late
    answer means. For deterministic backends ``"".join(stream(...)) == generate(...).text``.
    """

    model_id: str

    def generate(
        self, question: str, contexts: list[RetrievedClause], *, deadline: float | None = None
    ) -> Generation: ...

    def stream(
        self, question: str, contexts: list[RetrievedClause], *, deadline: float | None = None
    ) -> Iterator[str]: ...


@runtime_checkable
class ChatBackend(AnswerBackend, Protocol):
    """A backend over a chat model, which can also answer raw chat messages as given.

    ``max_new_tokens`` and ``temperature`` override the configured values for one call (the
    OpenAI-compatible route passes the request's ``max_tokens`` and ``temperature``).
    """

    def generate_messages(
        self,
        messages: Sequence[Message],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generation: ...

    def stream_messages(
        self,
        messages: Sequence[Message],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]: ...


@runtime_checkable
class BatchBackend(ChatBackend, Protocol):
    """A backend over a local model, which also answers many conversations in one call and scores
    given answers: what evaluation needs (``training.generation``), through public methods only.

    Both are greedy and deterministic; neither takes a deadline (evaluation has none).
    """

    def generate_batch(
        self, conversations: Sequence[Sequence[Message]], *, max_new_tokens: int | None = None
    ) -> list[Generation]:
        """The greedy reply to each conversation, in order, generated together."""
        ...

    def score_answers(self, items: Sequence[tuple[Sequence[Message], str]]) -> list[AnswerScore]:
        """How likely the model finds each answer after its prompt messages (answer tokens only)."""
        ...


def _help(text: str) -> dict[str, str]:
    return {"help": text}


class PromptedChatBackend:
    """Answers a question by rendering the one serving prompt and sending it as chat messages.

    Chat backends (transformers, vLLM, OpenAI-compatible) differ only in how they complete
    messages (``generate_messages`` / ``stream_messages``); they inherit the question-to-messages
    step from here so the prompt stays one.
    """

    def generate(
        self, question: str, contexts: list[RetrievedClause], *, deadline: float | None = None
    ) -> Generation:
        return self.generate_messages(build_messages(question, contexts), deadline=deadline)

    def stream(
        self, question: str, contexts: list[RetrievedClause], *, deadline: float | None = None
    ) -> Iterator[str]:
        return self.stream_messages(build_messages(question, contexts), deadline=deadline)


@dataclass
class BackendConfig:
    """Everything :func:`serving.backends.make_backend` needs but the endpoint; filled from settings
    (``KGQA_BACKEND__<FIELD>``, e.g. ``KGQA_BACKEND__TENSOR_PARALLEL_SIZE=2``) or the CLI.

    Only the fields of the chosen ``kind`` are read; the others keep their defaults. The ``openai``
    kind's endpoint is the shared :class:`kg.llm_endpoint.LlmEndpoint` (``KGQA_LLM__*``), passed
    to ``make_backend`` beside this config. A pydantic dataclass: values are validated (and
    converted from environment strings) when it is built.
    """

    kind: BackendKind = field(
        default="extractive",
        metadata=_help(
            "Which backend answers: 'extractive' (quotes clause sentences, no model), 'transformers' "
            "(local Qwen + optional LoRA on CPU/GPU), 'vllm' (GPU, multi-LoRA) or 'openai' (any "
            "OpenAI-compatible endpoint)."
        ),
    )
    model_path: str | None = field(
        default=None,
        metadata=_help("Local model directory (transformers, vllm). Nothing is downloaded."),
    )
    adapter_path: str | None = field(
        default=None, metadata=_help("Optional PEFT LoRA adapter directory, active from the start.")
    )
    adapter_name: str = field(
        default="default",
        metadata=_help("Name of the adapter loaded from adapter_path; part of model_id."),
    )
    max_new_tokens: int = field(default=256, metadata=_help("Most tokens generated per answer."))
    temperature: float = field(
        default=0.0,
        metadata=_help("0 means greedy decoding (reproducible answers); above 0 samples."),
    )
    top_p: float = field(default=1.0, metadata=_help("Nucleus sampling mass when temperature > 0."))
    no_repeat_ngram: int = field(
        default=0,
        metadata=_help(
            "transformers: ban repeating an n-gram of the answer itself (not of the prompt, which "
            "answers quote); 3-4 stops the loops small models fall into. 0 = off."
        ),
    )
    device: str | None = field(
        default=None,
        metadata=_help("Torch device for transformers ('cpu', 'cuda:0'); None picks CUDA when present."),
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = field(
        default="auto",
        metadata=_help("Weights dtype for transformers; 'auto' is bfloat16 on CUDA, float32 on CPU."),
    )
    max_lora_rank: int = field(
        default=64, metadata=_help("vllm: largest LoRA rank any adapter may have (memory is reserved).")
    )
    gpu_memory_utilization: float = field(
        default=0.9, metadata=_help("vllm: share of GPU memory for weights and KV cache.")
    )
    tensor_parallel_size: int = field(
        default=1, metadata=_help("vllm: GPUs one model is split over (tensor parallelism).")
    )
    max_model_len: int | None = field(
        default=None, metadata=_help("vllm: longest prompt + answer in tokens; None uses the model's.")
    )


def remaining(deadline: float | None) -> float | None:
    """Seconds left before ``deadline`` (never negative), or None when there is no deadline."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())


def expired(deadline: float | None) -> bool:
    """Whether ``deadline`` has passed."""
    return deadline is not None and time.monotonic() >= deadline


__all__ = [
    "AnswerBackend",
    "BackendConfig",
    "BackendKind",
    "BatchBackend",
    "ChatBackend",
    "Message",
    "expired",
    "remaining",
]
