"""The retrain world shared by the retrain tests and the console's Jobs tests.

The expense guide ingested, a dataset built from it, a tiny adapter trained on it, registered and
activated; then the guide is changed (三十日 -> 十五日 in one clause, one clause removed) and
re-ingested, so the change log holds a clause update and a retirement.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "training" / "configs"
GUIDE = "费用报销操作指引.md"
OLD, NEW = "费用发生后三十日内", "费用发生后十五日内"
REMOVED = "报销人员对审核结果有疑问的"


def _ingest(settings, driver, folder: Path) -> None:
    from kgqa.wiring import build_ingest_service

    report = build_ingest_service(settings, driver).ingest([folder])
    assert report.ok, report.failed


def _clause_with(driver, text: str) -> str:
    rows, _, _ = driver.execute_query(
        "MATCH (c:Clause) WHERE c.text CONTAINS $t RETURN c.clause_id AS id ORDER BY c.version DESC LIMIT 1",
        t=text,
    )
    return rows[0]["id"]


def dataset_config(root: Path) -> Path:
    """dataset-tiny.yaml with splits for a 7-clause guide: one clause group goes to validation."""
    data = yaml.safe_load((CONFIGS / "dataset-tiny.yaml").read_text(encoding="utf-8"))
    data["splits"].update({"train": 0.6, "val": 0.2, "test": 0.2})
    path = root / "dataset.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def write_config(path: Path, world: dict, **overrides) -> Path:
    data = yaml.safe_load((CONFIGS / "retrain-tiny.yaml").read_text(encoding="utf-8"))
    for key in ("sft_config", "eval_config"):
        data[key] = str(CONFIGS / data[key])
    data["dataset_config"] = str(world["root"] / "dataset.yaml")
    data.update(
        {
            "sft": {"max_length": 1024},
            "epochs": 1.0,
            "max_steps": 4,
            "eval_limit": 3,
            "eval_max_new_tokens": 16,
            "poll_s": 0.2,
        }
    )
    data.update(overrides)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def world(neo4j_server, neo4j_driver, tmp_path_factory, samples_dir, tiny_model_dir):
    from kg.registry import ModelRegistry
    from kgqa.settings import Settings
    from training.datagen.source import GraphSource
    from training.dataset import DatasetBuilder
    from training.dataset_config import DatasetConfig
    from training.registration import register_run
    from training.sft import SftRunner
    from training.sft_config import SftConfig

    with neo4j_driver.session() as s:
        s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    root = tmp_path_factory.mktemp("retrain")
    src = root / "src"
    src.mkdir()
    guide = src / GUIDE
    guide.write_text((samples_dir / "manuals" / GUIDE).read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings(neo4j_uri=neo4j_server.bolt_uri, home=root / "home")
    _ingest(settings, neo4j_driver, src)
    changed_id, removed_id = _clause_with(neo4j_driver, OLD), _clause_with(neo4j_driver, REMOVED)
    DatasetBuilder.from_config(DatasetConfig.load(dataset_config(root)), GraphSource(neo4j_driver)).build(
        root / "ds0"
    )
    sft = SftConfig.load(CONFIGS / "sft-tiny.yaml").with_overrides(
        max_steps=4, eval_steps=2, save_steps=2, max_length=1024
    )
    SftRunner(sft, device="cpu", progress=False).run(tiny_model_dir, root / "ds0", root / "sft0")
    registry = ModelRegistry(neo4j_driver)
    first = register_run(registry, root / "sft0", "sft")
    registry.activate(first.model_id)

    text = guide.read_text(encoding="utf-8")
    assert OLD in text and REMOVED in text
    kept = text[: text.index("## 常见问题")]  # the last section (with REMOVED) goes: its clause retires
    guide.write_text(kept.replace(OLD, NEW), encoding="utf-8")
    _ingest(settings, neo4j_driver, src)
    return {
        "root": root,
        "settings": settings,
        "first": first,
        "changed": changed_id,
        "removed": removed_id,
        "driver": neo4j_driver,
    }
