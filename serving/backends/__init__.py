"""Answer backends: extractive (default, no model), transformers (+PEFT), vLLM (multi-LoRA), OpenAI.

Only :func:`make_backend` knows the concrete classes; the service holds an :class:`AnswerBackend`.
Model libraries are imported when a backend of that kind is built, so choosing ``extractive``
never loads torch.

Example::

    backend = make_backend(BackendConfig(kind="transformers", model_path="/models/qwen2.5-7b-instruct",
                                         adapter_path="/models/adapters/v3"))
    generation = backend.generate(question, contexts, deadline=time.monotonic() + 10)
"""

from __future__ import annotations

from kg.llm_endpoint import LlmEndpoint
from serving.backends.base import (
    AnswerBackend,
    BackendConfig,
    BackendKind,
    BatchBackend,
    ChatBackend,
    Message,
)
from serving.backends.extractive import ExtractiveBackend


def make_backend(config: BackendConfig | None = None, endpoint: LlmEndpoint | None = None) -> AnswerBackend:
    """Build the configured backend, loading its model now (once), never per request.

    Args:
        config: which backend and its settings; None gives the extractive backend.
        endpoint: the OpenAI-compatible endpoint the ``openai`` kind answers through
            (``KGQA_LLM__*``); the other kinds ignore it.

    Raises:
        ConfigError: a required setting is missing, or the model/adapter/endpoint settings are
            unusable (the message names the setting to fix).
    """
    config = config or BackendConfig()
    if config.kind == "extractive":
        return ExtractiveBackend()
    if config.kind == "transformers":
        from serving.backends.transformers_backend import TransformersBackend

        return TransformersBackend.from_config(config)
    if config.kind == "vllm":
        from serving.backends.vllm_backend import VllmBackend

        return VllmBackend.from_config(config)
    if config.kind == "openai":
        from serving.backends.openai_backend import OpenAIBackend

        return OpenAIBackend.from_config(config, endpoint)
    from kgqa.errors import ConfigError

    raise ConfigError(f"unknown answer backend {config.kind!r}; use extractive, transformers, vllm or openai")


__all__ = [
    "AnswerBackend",
    "BackendConfig",
    "BackendKind",
    "BatchBackend",
    "ChatBackend",
    "ExtractiveBackend",
    "Message",
    "make_backend",
]
