"""The one configuration of an OpenAI-compatible chat endpoint (vLLM, Ollama, kgqa's own
``/v1/chat/completions``, OpenAI).

Three things talk to such an endpoint: LLM triple extraction (:mod:`kg.llm_extract`), dataset
generation (``training.datagen.llm_client``) and the ``openai`` answer backend
(``serving.backends.openai_backend``). They share this one description of it, filled from
``KGQA_LLM__BASE_URL``, ``KGQA_LLM__MODEL``, ``KGQA_LLM__API_KEY``, ``KGQA_LLM__TIMEOUT_S`` and
``KGQA_LLM__MAX_RETRIES`` by the settings and handed down by the composition root.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kgqa.errors import ConfigError


class LlmEndpoint(BaseModel):
    """Where an OpenAI-compatible chat endpoint is and how to call it.

    ``base_url`` and ``model`` together say that an endpoint is configured; the rest has defaults.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        default=None, description="Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1."
    )
    model: str | None = Field(default=None, description="Model name sent with every request.")
    api_key: str | None = Field(
        default=None, repr=False, description="API key; None sends 'EMPTY' (vLLM's convention)."
    )
    timeout_s: float = Field(default=60.0, gt=0.0, description="Timeout of one HTTP request (seconds).")
    max_retries: int = Field(
        default=3, ge=0, description="Retries after the first try on connection errors, timeouts, 429, 5xx."
    )

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def configured(self) -> bool:
        """Whether both the URL and the model are set."""
        return bool(self.base_url and self.model)

    @property
    def key(self) -> str:
        """The key to send: the configured one, else ``EMPTY``."""
        return self.api_key or "EMPTY"

    def require(self, who: str) -> None:
        """Raise ConfigError naming the settings when ``who`` needs an endpoint and none is set."""
        if not self.configured:
            raise ConfigError(f"{who} needs an LLM endpoint: set KGQA_LLM__BASE_URL and KGQA_LLM__MODEL")


__all__ = ["LlmEndpoint"]
