"""Keeps the running service on the registry's active model, without a restart.

A knowledge manager activates a model with ``kgqa models activate ID``; every serving process
polls the registry and, when the active model changed, loads its adapter next to the base
weights (transformers: a PEFT adapter; vLLM: a LoRARequest by name) and switches to it. The
adapter is registered under the model id, so every answer's ``model_id`` names the registry entry
it came from. A model on another base cannot be switched in place; that is logged, not guessed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import structlog

from kg.registry import ModelRegistry, ModelVersion
from kgqa.errors import ConfigError, GraphUnavailable
from serving.service import BackendHolder

log = structlog.get_logger(__name__)


class AdapterBackend(Protocol):
    """What a backend offers to switch LoRA adapters (transformers and vLLM backends)."""

    base_name: str
    model_id: str

    @property
    def adapters(self) -> list[str]: ...

    def load_adapter(self, path: str | Path, name: str) -> None: ...

    def set_adapter(self, name: str | None) -> None: ...


class ActiveModelSync:
    """Applies the registry's active model to the backend in ``holder``.

    Args:
        registry: the model registry.
        holder: the service's backend holder.
        interval_s: seconds between polls of the background thread.
    """

    def __init__(self, registry: ModelRegistry, holder: BackendHolder, *, interval_s: float = 5.0) -> None:
        self._registry = registry
        self._holder = holder
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned: set[tuple[str, str]] = set()

    def sync_once(self) -> str | None:
        """Switch to the active model if needed; returns the active model id (None: none active)."""
        try:
            active = self._registry.active()
        except GraphUnavailable:
            return None  # keep answering with what is loaded; the next poll retries
        if active is None:
            return None
        backend = self._holder.get()
        if not hasattr(backend, "load_adapter"):
            self._warn_once(
                active.model_id,
                "model.sync.unsupported_backend",
                backend=backend.model_id,
                hint="serve with KGQA_BACKEND__KIND=transformers or vllm to answer with trained adapters",
            )
            return active.model_id
        self._apply(backend, active)
        return active.model_id

    def _apply(self, backend: AdapterBackend, active: ModelVersion) -> None:
        if active.adapter_path is None:
            if backend.model_id != backend.base_name:
                backend.set_adapter(None)
                log.info("model.sync.base", model_id=active.model_id)
            return
        if Path(active.base_path).resolve().name != backend.base_name:
            self._warn_once(
                active.model_id,
                "model.sync.other_base",
                base=active.base_path,
                serving=backend.base_name,
                hint="restart the service on that base model",
            )
            return
        if backend.model_id == f"{backend.base_name}+{active.model_id}":
            return
        try:
            if active.model_id not in backend.adapters:
                backend.load_adapter(active.adapter_path, active.model_id)
            backend.set_adapter(active.model_id)
        except ConfigError as exc:
            self._warn_once(active.model_id, "model.sync.load_failed", error=str(exc))
            return
        log.info("model.sync.switched", model_id=active.model_id, adapter=active.adapter_path)

    def _warn_once(self, model_id: str, event: str, **kw: object) -> None:
        if (model_id, event) not in self._warned:
            self._warned.add((model_id, event))
            log.warning(event, model_id=model_id, **kw)

    # -- background polling ---------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="kgqa-model-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval + 5)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync_once()
            except Exception:  # a poll must never kill the thread that keeps the model current
                log.exception("model.sync.error")
            self._stop.wait(self._interval)


__all__ = ["ActiveModelSync", "AdapterBackend"]
