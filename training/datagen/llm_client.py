"""A chat client for dataset generation over any OpenAI-compatible endpoint, with an on-disk cache.

A dataset build sends thousands of prompts to a model server (vLLM with Qwen in production, or
kgqa's own ``/v1/chat/completions``). Three things make that affordable and safe:

* **The cache.** Every completion is stored under the hash of what determines it (model,
  messages, temperature, max_tokens, sample index), one JSON file per key, written atomically
  (temp file + rename), so a build that is interrupted resumes without paying twice and never
  reads a torn entry. Asking again for a *different* sample of the same prompt uses another
  sample index, hence another key.
* **Retries.** Connection errors, timeouts, 429 and 5xx are retried with exponential backoff
  (tenacity); 4xx answers are not, because asking again cannot fix a wrong key, model or request.
* **A concurrency cap.** :meth:`ChatClient.complete_many` keeps at most ``concurrency`` requests
  in flight, so a shared server is not flooded.

Token counts of the requests actually sent are totalled in :class:`LlmUsage` for the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NoReturn

import openai
import structlog
from pydantic import ConfigDict, Field
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential
from tqdm import tqdm

from kg.llm_endpoint import LlmEndpoint
from kgqa.errors import ConfigError, KgqaError

log = structlog.get_logger(__name__)

Message = dict[str, str]


class LlmError(KgqaError):
    """One LLM request failed (a 4xx answer, or 5xx/429/timeouts after all retries).

    Dataset generation records it as a rejection of that one candidate and goes on.
    """

    def __init__(self, endpoint: str, reason: str, *, status: int | None = None) -> None:
        self.endpoint = endpoint
        self.reason = reason
        self.status = status
        super().__init__(f"LLM endpoint {endpoint}: {reason}")


class LlmUnavailable(LlmError):
    """The endpoint could not be reached after all retries: start the model server or fix the URL.

    Not a per-candidate failure: a build stops here (its cache keeps what was done) instead of
    rejecting every remaining candidate.
    """


class LlmEndpointConfigError(LlmError, ConfigError):
    """The endpoint refused the key (401/403) or does not know the route or model (404)."""


class LlmConfig(LlmEndpoint):
    """How dataset generation talks to an OpenAI-compatible endpoint.

    The endpoint itself (``base_url``, ``model``, ``api_key``, ``timeout_s``, ``max_retries``) is
    :class:`kg.llm_endpoint.LlmEndpoint`, the one configuration kgqa has of such an endpoint
    (``KGQA_LLM__*``: the CLI fills it from the settings); the rest is how generation samples.
    """

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(description="Base URL of the OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1.")
    model: str = Field(description="Model name sent with every request (part of the cache key).")
    temperature: float = Field(
        default=0.7, ge=0.0, le=2.0, description="Sampling temperature of generation (judges use 0)."
    )
    n_samples: int = Field(default=1, ge=1, description="Completions asked per prompt (sample 0..n-1).")
    max_tokens: int = Field(default=512, ge=1, description="Most tokens generated per completion.")
    backoff_s: float = Field(
        default=1.0, ge=0.0, description="First wait before a retry; doubles on each further retry."
    )
    concurrency: int = Field(default=4, ge=1, description="Most requests in flight at once.")
    cache_dir: Path | None = Field(
        default=None, description="Folder of the prompt cache; None disables caching."
    )
    seed: int | None = Field(
        default=None,
        description="When set, each request carries seed + sample index (vLLM then samples reproducibly).",
    )


@dataclass(frozen=True)
class Completion:
    """One completion: its text, the tokens it cost when it was generated, whether it came from the cache."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False


@dataclass(frozen=True)
class ChatRequest:
    """One prompt to complete; ``temperature``/``max_tokens`` None take the config's."""

    messages: Sequence[Message]
    sample: int = 0
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass
class LlmUsage:
    """What this client did. Tokens count only requests actually sent (cache hits cost nothing)."""

    requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def to_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def cache_key(
    model: str,
    messages: Sequence[Message],
    temperature: float,
    max_tokens: int,
    sample: int,
    seed: int | None = None,
) -> str:
    """sha256 of the canonical JSON of everything that determines a completion."""
    material: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "temperature": float(temperature),
        "max_tokens": int(max_tokens),
        "sample": int(sample),
    }
    if seed is not None:
        material["seed"] = int(seed)
    canonical = json.dumps(material, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class PromptCache:
    """Completions on disk, one JSON file per key under ``dir/<key[:2]>/<key>.json``.

    Writes go to a temp file in the same folder and are renamed into place, so a reader sees a
    whole entry or none, even when the writer was killed mid-write. An unreadable entry (edited
    by hand, disk trouble) is a miss, logged, and overwritten by the next put.
    """

    def __init__(self, directory: Path | str) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                raise ValueError("not a completion entry")
        except FileNotFoundError:
            entry = None
        except (OSError, ValueError) as exc:
            log.warning("llm.cache_unreadable", path=str(path), error=str(exc))
            entry = None
        with self._lock:
            if entry is None:
                self.misses += 1
            else:
                self.hits += 1
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{key[:8]}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.dir.glob("*/*.json"))


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return False


def _status_detail(exc: openai.APIStatusError) -> str:
    try:
        body = exc.response.json()
        message = body.get("error", {}).get("message") or body.get("detail") or exc.message
    except Exception:  # a non-JSON error body: use the client's message
        message = exc.message
    return f"HTTP {exc.status_code}: {message}"


class ChatClient:
    """Completes chat prompts through the ``openai`` client, with cache, retries and a concurrency cap.

    Args:
        config: endpoint, model and sampling settings.
        cache: the prompt cache; None builds one from ``config.cache_dir`` (or none when unset).
    """

    def __init__(self, config: LlmConfig, cache: PromptCache | None = None) -> None:
        self.config = config
        self.cache = cache if cache is not None else (PromptCache(config.cache_dir) if config.cache_dir else None)
        self.usage = LlmUsage()
        # max_retries=0: retries are ours (tenacity), so that attempts and backoff are counted here.
        self._client = openai.OpenAI(
            base_url=config.base_url, api_key=config.key, timeout=config.timeout_s, max_retries=0
        )

    @property
    def model(self) -> str:
        return self.config.model

    def key(self, request: ChatRequest) -> str:
        """The cache key of a request (its effective temperature and max_tokens included)."""
        return cache_key(
            self.config.model,
            request.messages,
            self._temperature(request),
            request.max_tokens or self.config.max_tokens,
            request.sample,
            None if self.config.seed is None else self.config.seed + request.sample,
        )

    def _temperature(self, request: ChatRequest) -> float:
        return self.config.temperature if request.temperature is None else request.temperature

    def complete(
        self,
        messages: Sequence[Message],
        sample: int = 0,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """One completion, from the cache when it holds this exact request.

        Raises:
            LlmUnavailable: the endpoint could not be reached after all retries.
            LlmEndpointConfigError: 401/403/404 — wrong key, URL or model.
            LlmError: another 4xx, or 5xx/429/timeouts after all retries.
        """
        return self._complete(ChatRequest(messages, sample, temperature, max_tokens))

    def _complete(self, request: ChatRequest) -> Completion:
        cached = self._cached(request)
        return cached if cached is not None else self._request_cached(request)

    def _cached(self, request: ChatRequest) -> Completion | None:
        entry = self.cache.get(self.key(request)) if self.cache is not None else None
        if entry is None:
            return None
        self.usage.add(cache_hits=1)
        return Completion(
            entry["text"], int(entry.get("prompt_tokens", 0)), int(entry.get("completion_tokens", 0)), True
        )

    def _request(self, request: ChatRequest) -> Completion:
        """The HTTP call with retries; every attempt counts in ``usage.requests``."""
        cfg = self.config
        extra: dict[str, Any] = {}
        if cfg.seed is not None:
            extra["seed"] = cfg.seed + request.sample
        attempts = cfg.max_retries + 1

        def call() -> Any:
            self.usage.add(requests=1)
            return self._client.chat.completions.create(
                model=cfg.model,
                messages=list(request.messages),  # type: ignore[arg-type]
                temperature=self._temperature(request),
                max_tokens=request.max_tokens or cfg.max_tokens,
                **extra,
            )

        retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=cfg.backoff_s, min=cfg.backoff_s, max=60.0),
            retry=retry_if_exception(_retryable),
            before_sleep=lambda state: log.info(
                "llm.retry",
                endpoint=cfg.base_url,
                attempt=state.attempt_number,
                error=str(state.outcome.exception()) if state.outcome else "",
            ),
            reraise=False,
        )
        try:
            reply = retrying(call)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            self._raise(last, attempts)
        except openai.APIError as exc:  # not retryable (4xx, a malformed reply): the first try was final
            self._raise(exc, 1)
        choice = reply.choices[0] if reply.choices else None
        text = (choice.message.content if choice is not None else None) or ""
        usage = reply.usage
        return Completion(
            text=text,
            prompt_tokens=int(usage.prompt_tokens) if usage else 0,
            completion_tokens=int(usage.completion_tokens) if usage else 0,
            cached=False,
        )

    def _raise(self, exc: BaseException | None, attempts: int) -> NoReturn:
        endpoint = self.config.base_url
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        if isinstance(exc, openai.APITimeoutError):  # slow on this prompt: that candidate fails
            raise LlmError(endpoint, f"timed out {tries} (timeout_s={self.config.timeout_s})") from exc
        if isinstance(exc, openai.APIConnectionError):
            raise LlmUnavailable(
                endpoint, f"unreachable {tries} ({exc}); start the model server or fix the endpoint URL"
            ) from exc
        if isinstance(exc, openai.APIStatusError):
            detail = _status_detail(exc)
            if exc.status_code in (401, 403):
                raise LlmEndpointConfigError(
                    endpoint, f"{detail}; check the API key (KGQA_LLM__API_KEY)", status=exc.status_code
                ) from exc
            if exc.status_code == 404:
                raise LlmEndpointConfigError(
                    endpoint,
                    f"{detail}; check the endpoint URL (it should end in /v1) and the model name "
                    f"{self.config.model!r}",
                    status=exc.status_code,
                ) from exc
            if _retryable(exc):
                raise LlmError(endpoint, f"{detail} {tries}", status=exc.status_code) from exc
            raise LlmError(endpoint, f"{detail} (not retried: the request itself was refused)",
                           status=exc.status_code) from exc
        raise LlmError(endpoint, f"request failed {tries}: {exc!r}") from exc

    def complete_many(
        self, requests: Sequence[ChatRequest], *, desc: str = "llm"
    ) -> list[Completion | LlmError]:
        """Complete many requests, at most ``concurrency`` in flight; results in request order.

        Cache hits are answered first, without the pool. A failed request gives its
        :class:`LlmError` in its slot instead of a completion, so one bad prompt does not cost the
        rest of the batch; :class:`LlmUnavailable` and :class:`LlmEndpointConfigError` are raised
        (after the requests already running have finished) because every other request would fail
        the same way.
        """
        results: list[Completion | LlmError | None] = [None] * len(requests)
        todo: list[int] = []
        for i, request in enumerate(requests):
            results[i] = self._cached(request)
            if results[i] is None:
                todo.append(i)
        fatal: LlmError | None = None
        if todo:
            with (
                ThreadPoolExecutor(max_workers=self.config.concurrency, thread_name_prefix="llm") as pool,
                tqdm(total=len(todo), desc=desc, unit="req", disable=None) as bar,
            ):
                stop = threading.Event()
                futures = {pool.submit(self._batch_request, requests[i], stop): i for i in todo}
                for future in as_completed(futures):
                    i = futures[future]
                    try:
                        results[i] = future.result()
                    except (LlmUnavailable, LlmEndpointConfigError) as exc:
                        fatal = exc
                        for other in futures:  # queued requests would fail the same way
                            other.cancel()
                        break
                    except LlmError as exc:
                        results[i] = exc
                    bar.update(1)
        log.info("llm.batch", batch=len(requests), sent=len(todo), usage=self.usage.to_dict())
        if fatal is not None:
            raise fatal
        return results  # type: ignore[return-value]  # every slot is filled when nothing was fatal

    def _batch_request(self, request: ChatRequest, stop: threading.Event) -> Completion | None:
        """One request of a batch; skipped (None) once another one found the endpoint down."""
        if stop.is_set():
            return None
        try:
            return self._request_cached(request)
        except (LlmUnavailable, LlmEndpointConfigError):
            stop.set()  # before the main thread hears of it, so queued requests are not sent
            raise

    def _request_cached(self, request: ChatRequest) -> Completion:
        """Send a request that missed the cache, count its tokens and store the completion."""
        key = self.key(request)
        try:
            completion = self._request(request)
        except LlmError:
            self.usage.add(failures=1)
            raise
        self.usage.add(prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens)
        if self.cache is not None:
            self.cache.put(
                key,
                {
                    "text": completion.text,
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "model": self.config.model,
                    "sample": request.sample,
                },
            )
        return completion

    def close(self) -> None:
        self._client.close()


__all__ = [
    "ChatClient",
    "ChatRequest",
    "Completion",
    "LlmConfig",
    "LlmEndpointConfigError",
    "LlmError",
    "LlmUnavailable",
    "LlmUsage",
    "PromptCache",
    "cache_key",
]
