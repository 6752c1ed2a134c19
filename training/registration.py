"""Trained runs become ModelVersion nodes: the bridge from run folders to the model registry.

A run folder (SFT or GRPO) records its provenance; registering it gives it a model id, stored in
``model.json`` in the folder, so later steps (``kgqa eval``, ``kgqa models activate RUN_DIR``) find
the registry entry from the folder alone. Registration needs Neo4j; training does not, so a run
trained offline is registered later with ``kgqa models register RUN_DIR``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kg.registry import ModelRegistry, ModelVersion
from kgqa.errors import ConfigError
from training.run_artifacts import read_json

MODEL_FILE = "model.json"


def _read(path: Path) -> dict[str, Any]:
    """A run's JSON record, ``{}`` when the run did not write it."""
    return read_json(path) if path.is_file() else {}


def model_id_of(run_dir: Path) -> str | None:
    """The registry id of a registered run folder (None when it was never registered)."""
    return _read(Path(run_dir) / MODEL_FILE).get("model_id")


def register_run(
    registry: ModelRegistry, run_dir: Path, kind: str, *, parent_id: str | None = None
) -> ModelVersion:
    """Register (or re-register) a run folder; returns its ModelVersion.

    The id is ``<kind>-<dataset hash prefix>-<UTC time>``, chosen once and kept in ``model.json``.
    The base, graph version and dataset hash come from the run's ``provenance.json``; GRPO runs
    name their SFT parent, whose id comes from the parent folder's ``model.json``; ``parent_id``
    names it when the caller knows it (an incremental retrain continues the active model).
    """
    run_dir = Path(run_dir).resolve()
    if not (run_dir / "adapter_config.json").is_file():
        raise ConfigError(f"{run_dir}: not a trained run folder (no adapter_config.json)")
    prov = _read(run_dir / "provenance.json")
    base_path = (prov.get("base") or {}).get("path")
    if not base_path:
        raise ConfigError(f"{run_dir}/provenance.json does not name the base model")
    dataset = prov.get("dataset") or {}
    dataset_hash, graph_version = dataset.get("dataset_hash"), dataset.get("graph_version")
    parent_dir = (prov.get("parent") or {}).get("path")  # GRPO: the SFT run it continued
    if parent_id is None and parent_dir:
        parent_id = model_id_of(Path(parent_dir))
    model_id = model_id_of(run_dir) or (
        f"{kind}-{(dataset_hash or 'nodata')[:8]}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"
    )
    metrics = _read(run_dir / "metrics.json")
    model = registry.register(
        ModelVersion(
            model_id=model_id,
            kind=kind,
            base_path=str(Path(base_path).resolve()),
            adapter_path=str(run_dir),
            graph_version=graph_version,
            dataset_hash=dataset_hash,
            parent_id=parent_id,
            metrics={"training": {k: v for k, v in metrics.items() if isinstance(v, int | float | str)}},
        )
    )
    (run_dir / MODEL_FILE).write_text(
        json.dumps({"model_id": model.model_id, "kind": kind}, indent=2), encoding="utf-8"
    )
    return model


def resolve_model_id(value: str) -> str:
    """A model id as given, or the id of the registered run folder ``value`` names."""
    path = Path(value)
    if path.is_dir():
        mid = model_id_of(path)
        if mid is None:
            raise ConfigError(f"{path} is a folder but not a registered run; run kgqa models register {path}")
        return mid
    return value


__all__ = ["MODEL_FILE", "model_id_of", "register_run", "resolve_model_id"]
