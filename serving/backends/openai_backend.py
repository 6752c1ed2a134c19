"""The openai backend: any OpenAI-compatible chat endpoint (vLLM's server, another kgqa, a vendor).

The prompt is built here (:mod:`kg.prompting`), so the endpoint only runs the model. The
caller's deadline bounds everything: each attempt's request timeout is the time left, and
transient failures (connection errors, 429, 5xx) are retried with jittered exponential backoff
(tenacity) only while time is left, never sleeping past the deadline. The client's own retries
are off, because they know nothing of the deadline. A stream stops being read when it passes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import openai
from openai import OpenAI
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    wait_exponential,
    wait_random,
)

from kg.llm_endpoint import LlmEndpoint
from kgqa.errors import ConfigError, DeadlineExceeded, NotReady, ServingError
from serving.backends.base import BackendConfig, Message, PromptedChatBackend, expired, remaining
from serving.types import Generation


class OpenAIBackend(PromptedChatBackend):
    """Answers through ``chat.completions`` of an OpenAI-compatible endpoint.

    Args:
        base_url: the endpoint, e.g. ``http://127.0.0.1:8000/v1``.
        model: the model name the endpoint serves (also this backend's ``model_id``).
        api_key: the key; ``EMPTY`` when None, as vLLM's server expects without ``--api-key``.
        max_new_tokens: ``max_tokens`` of each request.
        temperature: 0 for greedy decoding.
        top_p: nucleus mass when sampling.
        timeout_s: request timeout when the caller gives no deadline.
        max_retries: retries of a request that failed transiently (within the deadline).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        timeout_s: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        self.model_id = model
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_p = top_p
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._client = OpenAI(base_url=base_url, api_key=api_key or "EMPTY", timeout=timeout_s, max_retries=0)

    @classmethod
    def from_config(cls, config: BackendConfig, endpoint: LlmEndpoint | None) -> OpenAIBackend:
        """The backend for ``config`` (generation settings) at ``endpoint`` (``KGQA_LLM__*``).

        Raises:
            ConfigError: the endpoint has no URL or model.
        """
        endpoint = endpoint or LlmEndpoint()
        endpoint.require("the openai answer backend")
        return cls(
            endpoint.base_url,
            endpoint.model,
            api_key=endpoint.api_key,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            top_p=config.top_p,
            timeout_s=endpoint.timeout_s,
            max_retries=endpoint.max_retries,
        )

    def generate_messages(
        self,
        messages: Sequence[Message],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Generation:
        """One completion for the messages as given.

        Returns an empty generation when the deadline has already passed.

        Raises:
            DeadlineExceeded: the endpoint did not answer before the deadline.
            NotReady: the endpoint is unreachable or failed after the retries.
        """
        if expired(deadline):
            return Generation("", self.model_id)
        with _translate_errors():
            response = self._create(self._request(messages, max_new_tokens, temperature), deadline)
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        return Generation(
            text,
            self.model_id,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        )

    def stream_messages(
        self,
        messages: Sequence[Message],
        *,
        deadline: float | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Iterator[str]:
        """Content deltas of a streamed completion; stops reading when the deadline passes."""
        if expired(deadline):
            return
        with _translate_errors():
            request = self._request(messages, max_new_tokens, temperature)
            chunks = self._create({**request, "stream": True}, deadline)
            with chunks:
                for chunk in chunks:
                    for choice in chunk.choices:
                        if choice.delta and choice.delta.content:
                            yield choice.delta.content
                    if expired(deadline):
                        return

    def _request(
        self, messages: Sequence[Message], max_new_tokens: int | None, temperature: float | None
    ) -> dict[str, Any]:
        return {
            "model": self.model_id,
            "messages": list(messages),
            "max_tokens": max_new_tokens or self.max_new_tokens,
            "temperature": self.temperature if temperature is None else temperature,
            "top_p": self.top_p,
        }

    def _create(self, request: dict[str, Any], deadline: float | None) -> Any:
        """``chat.completions.create`` with retries that respect the deadline."""
        backoff = wait_exponential(multiplier=0.25, max=4.0) + wait_random(0, 0.25)

        def wait(state: Any) -> float:
            left = remaining(deadline)
            return backoff(state) if left is None else min(backoff(state), left)

        retrying = Retrying(
            retry=retry_if_exception_type(_TRANSIENT),
            stop=stop_any(stop_after_attempt(self.max_retries + 1), lambda _: expired(deadline)),
            wait=wait,
            reraise=True,
        )

        def attempt() -> Any:
            left = remaining(deadline)
            timeout = self.timeout_s if left is None else max(left, 0.001)
            return self._client.chat.completions.create(**request, timeout=timeout)

        return retrying(attempt)


_TRANSIENT = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)


@contextlib.contextmanager
def _translate_errors() -> Iterator[None]:
    """Map the client's failures to kgqa's error family (the transports map those to codes)."""
    try:
        yield
    except openai.APITimeoutError as exc:
        raise DeadlineExceeded("the answer endpoint did not reply before the deadline") from exc
    except (openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError) as exc:
        raise NotReady(f"the answer endpoint is unavailable ({exc}); retry later") from exc
    except (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError) as exc:
        raise ConfigError(f"the answer endpoint refused us ({exc}); check the openai settings") from exc
    except openai.OpenAIError as exc:
        raise ServingError(f"the answer endpoint failed: {exc}") from exc


__all__ = ["OpenAIBackend"]
