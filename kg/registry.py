"""The model registry: every trained adapter as a ModelVersion node, one of them active.

The registry lives in the graph beside the clauses it was trained on, so an auditor can go from
an answer's ``model_id`` to the adapter, the dataset hash and the graph version that taught it.
Activation is one transaction that clears the previous active flag, so at most one model is
active; the serving process polls :meth:`ModelRegistry.active` and switches adapters in place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import neo4j

from kg import queries as q
from kg.session import GraphSession
from kgqa.errors import InvalidArgument, NotFound


@dataclass
class ModelVersion:
    """One registered model.

    Attributes:
        model_id: stable id (``sft-<dataset hash prefix>-<time>``); the adapter is loaded under it.
        kind: ``base``, ``sft`` or ``grpo``.
        base_path: the base model directory the adapter was trained on.
        adapter_path: the PEFT adapter directory (None for a bare base).
        graph_version: the graph version of the dataset it was trained on.
        dataset_hash: the dataset's content hash.
        parent_id: the model it continued from (GRPO continues an SFT adapter).
        metrics: evaluation figures (``kgqa eval`` adds them).
        active: whether the service answers with it.
    """

    model_id: str
    kind: str
    base_path: str
    adapter_path: str | None
    graph_version: int | None = None
    dataset_hash: str | None = None
    parent_id: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    active: bool = False
    activated_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "kind": self.kind,
            "base_path": self.base_path,
            "adapter_path": self.adapter_path,
            "graph_version": self.graph_version,
            "dataset_hash": self.dataset_hash,
            "parent_id": self.parent_id,
            "metrics": self.metrics,
            "created_at": self.created_at,
            "active": self.active,
            "activated_at": self.activated_at,
        }


def _from_record(row: dict[str, Any]) -> ModelVersion:
    return ModelVersion(
        model_id=row["model_id"],
        kind=row["kind"],
        base_path=row["base_path"],
        adapter_path=row.get("adapter_path"),
        graph_version=row.get("graph_version"),
        dataset_hash=row.get("dataset_hash"),
        parent_id=row.get("parent_id"),
        metrics=json.loads(row.get("metrics_json") or "{}"),
        created_at=row.get("created_at") or "",
        active=bool(row.get("active")),
        activated_at=row.get("activated_at"),
    )


class ModelRegistry:
    """ModelVersion nodes over Bolt.

    Args:
        driver: an open ``neo4j.Driver``.
        database: target database; ``None`` uses the server default.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._graph = GraphSession(driver, database)

    def _run(self, query: str, routing: str = "w", **params: Any) -> list[dict[str, Any]]:
        records = self._graph.read(query, **params) if routing == "r" else self._graph.write(query, **params)
        return [r.data() for r in records]

    def register(self, model: ModelVersion) -> ModelVersion:
        """Create (or update the paths and metrics of) a ModelVersion; never changes ``active``."""
        if not model.model_id or any(c in model.model_id for c in "+/ "):
            raise InvalidArgument(f"model id {model.model_id!r} must be non-empty without '+', '/' or spaces")
        created = model.created_at or datetime.now(UTC).isoformat(timespec="seconds")
        rows = self._run(
            q.MODEL_REGISTER,
            m={
                "model_id": model.model_id,
                "kind": model.kind,
                "base_path": model.base_path,
                "adapter_path": model.adapter_path,
                "graph_version": model.graph_version,
                "dataset_hash": model.dataset_hash,
                "parent_id": model.parent_id,
                "metrics_json": json.dumps(model.metrics, ensure_ascii=False, sort_keys=True),
                "created_at": created,
            },
        )
        return _from_record(rows[0]["m"])

    def add_metrics(self, model_id: str, metrics: dict[str, Any]) -> ModelVersion:
        """Merge evaluation figures into a model's metrics (keyed by test set)."""
        current = self.get(model_id)
        merged = {**current.metrics, **metrics}
        rows = self._run(
            q.MODEL_SET_METRICS,
            model_id=model_id,
            metrics_json=json.dumps(merged, ensure_ascii=False, sort_keys=True),
        )
        return _from_record(rows[0]["m"])

    def get(self, model_id: str) -> ModelVersion:
        rows = self._run(q.MODEL_GET, routing="r", model_id=model_id)
        if not rows:
            raise NotFound(f"no model {model_id!r} in the registry; see kgqa models list")
        return _from_record(rows[0]["m"])

    def list(self) -> list[ModelVersion]:
        return [_from_record(r["m"]) for r in self._run(q.MODEL_LIST, routing="r")]

    def active(self) -> ModelVersion | None:
        rows = self._run(q.MODEL_ACTIVE, routing="r")
        return _from_record(rows[0]["m"]) if rows else None

    def activate(self, model_id: str) -> ModelVersion:
        """Make ``model_id`` the one active model (the previous one is deactivated in the same tx)."""
        rows = self._run(q.MODEL_ACTIVATE, model_id=model_id, at=datetime.now(UTC).isoformat(timespec="seconds"))
        if not rows:
            raise NotFound(f"no model {model_id!r} in the registry; see kgqa models list")
        return _from_record(rows[0]["m"])

    def deactivate(self) -> None:
        """No model active: the service answers with its configured backend alone."""
        self._run(q.MODEL_DEACTIVATE)


__all__ = ["ModelRegistry", "ModelVersion"]
