"""A running service follows the registry's active model without a restart (tiny real Qwen)."""

from __future__ import annotations

from kg.registry import ModelRegistry, ModelVersion
from kgqa.settings import Settings
from kgqa.wiring import build_backend
from serving.backends.extractive import ExtractiveBackend
from serving.backends.transformers_backend import TransformersBackend
from serving.model_sync import ActiveModelSync
from serving.service import BackendHolder


def test_sync_loads_and_switches_the_active_adapter(clean_graph, tiny_model_dir, tiny_adapter_dir):
    registry = ModelRegistry(clean_graph)
    backend = TransformersBackend(tiny_model_dir, max_new_tokens=8)
    sync = ActiveModelSync(registry, BackendHolder(backend), interval_s=0.1)
    base_id = backend.model_id
    messages = [{"role": "user", "content": "存货应当如何计量？"}]
    base_text = backend.generate_messages(messages).text
    assert sync.sync_once() is None and backend.model_id == base_id  # nothing active: unchanged

    for mid in ("sft-one", "sft-two"):
        registry.register(
            ModelVersion(model_id=mid, kind="sft", base_path=str(tiny_model_dir), adapter_path=str(tiny_adapter_dir))
        )
    registry.activate("sft-one")
    assert sync.sync_once() == "sft-one"
    assert backend.model_id == f"{base_id}+sft-one"
    assert backend.generate_messages(messages).text != base_text  # the adapter is what answers now

    registry.activate("sft-two")
    sync.start()
    try:
        import time

        deadline = time.monotonic() + 10
        while backend.model_id != f"{base_id}+sft-two" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        sync.stop()
    assert backend.model_id == f"{base_id}+sft-two"
    assert sorted(backend.adapters) == ["sft-one", "sft-two"]

    registry.register(ModelVersion(model_id="base", kind="base", base_path=str(tiny_model_dir), adapter_path=None))
    registry.activate("base")
    sync.sync_once()
    assert backend.model_id == base_id
    assert backend.generate_messages(messages).text == base_text


def test_extractive_backend_keeps_serving(clean_graph, tiny_model_dir, tiny_adapter_dir):
    registry = ModelRegistry(clean_graph)
    registry.register(
        ModelVersion(model_id="sft-x", kind="sft", base_path=str(tiny_model_dir), adapter_path=str(tiny_adapter_dir))
    )
    registry.activate("sft-x")
    holder = BackendHolder(ExtractiveBackend())
    assert ActiveModelSync(registry, holder).sync_once() == "sft-x"
    assert holder.get().model_id == ExtractiveBackend().model_id


def test_wiring_builds_the_active_model_when_no_path_is_set(clean_graph, neo4j_server, tiny_model_dir, tiny_adapter_dir):
    registry = ModelRegistry(clean_graph)
    registry.register(
        ModelVersion(model_id="sft-w", kind="sft", base_path=str(tiny_model_dir), adapter_path=str(tiny_adapter_dir))
    )
    registry.activate("sft-w")
    settings = Settings(neo4j_uri=neo4j_server.bolt_uri, backend={"kind": "transformers", "max_new_tokens": 8})
    backend = build_backend(settings, clean_graph)
    assert backend.model_id.endswith("+sft-w")
