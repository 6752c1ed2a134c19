"""The model registry on a real Neo4j: registration, one active model, metrics merge."""

from __future__ import annotations

import pytest

from kg.registry import ModelRegistry, ModelVersion
from kgqa.errors import InvalidArgument, NotFound


def _model(model_id: str, **kw) -> ModelVersion:
    return ModelVersion(model_id=model_id, kind="sft", base_path="/models/base", adapter_path=f"/runs/{model_id}", **kw)


def test_register_list_activate_one_at_a_time(clean_graph):
    registry = ModelRegistry(clean_graph)
    registry.register(_model("sft-a", graph_version=3, dataset_hash="abc"))
    registry.register(_model("grpo-b", parent_id="sft-a"))
    assert {m.model_id for m in registry.list()} == {"sft-a", "grpo-b"}
    assert registry.active() is None

    assert registry.activate("sft-a").active
    assert registry.active().model_id == "sft-a"
    registry.activate("grpo-b")
    active = [m.model_id for m in registry.list() if m.active]
    assert active == ["grpo-b"]
    assert registry.get("grpo-b").parent_id == "sft-a"
    with clean_graph.session() as s:
        assert s.run(
            "MATCH (:ModelVersion {model_id: $a})-[:CONTINUES]->(:ModelVersion {model_id: $b}) RETURN count(*) AS n",
            a="grpo-b",
            b="sft-a",
        ).single()["n"] == 1

    registry.deactivate()
    assert registry.active() is None


def test_register_again_keeps_active_flag_and_merges_metrics(clean_graph):
    registry = ModelRegistry(clean_graph)
    registry.register(_model("sft-a", metrics={"paraphrase": {"token_f1": 0.4}}))
    registry.activate("sft-a")
    again = registry.register(_model("sft-a", metrics={"paraphrase": {"token_f1": 0.4}}))
    assert again.active, "re-registering must not deactivate a serving model"
    merged = registry.add_metrics("sft-a", {"unseen": {"token_f1": 0.2}})
    assert merged.metrics == {"paraphrase": {"token_f1": 0.4}, "unseen": {"token_f1": 0.2}}


def test_unknown_and_bad_ids(clean_graph):
    registry = ModelRegistry(clean_graph)
    with pytest.raises(NotFound, match="no model 'nope'"):
        registry.activate("nope")
    with pytest.raises(NotFound):
        registry.get("nope")
    with pytest.raises(InvalidArgument):
        registry.register(_model("a+b"))
