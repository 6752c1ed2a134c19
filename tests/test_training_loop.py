"""Issue 5's acceptance check, on one trained loop: the offline loop learns, and the activated adapter serves.

The same steps and configs as `make train` (tiny base pretrained on the sample manuals, dataset
from the graph, LoRA SFT with training/configs/sft-tiny.yaml, evaluation with eval-tiny.yaml),
then registration, activation and an answer from the service with the activated adapter; last,
issue 14's end-to-end edit check with that real adapter (it was trained on 三十日; the clause is
edited to 十五日; the answer says 十五日 and cites the new version).

The margin is chosen so that a pipeline that does not learn fails: the untrained base scores
token F1 ~0.07 and key-fact accuracy ~0.09 on the paraphrase test set (measured); a run of this
loop scored ~0.24 and ~0.22; one on 2026-12-07 (base .086 / 0, SFT .179 / .115) passed by a
thin F1 margin; with the prompt-aware tokenizer (training/pretrain.py PROMPT_WEIGHT) runs scored
base .038-.060 / 0, SFT .180-.323 / .077-.231. The test asks for +0.08 token F1 and +0.05
key-fact accuracy.
Slow: it is the one test that trains for real, and the critical path of `make test`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "training" / "configs"

# The fixture trains for real: its setup took 457-475 s inside `make test` with one torch thread
# per test process (tests/conftest.py; 985 s with two), 1,500 s beside another training run with
# two, so its limit is far from what it needs rather than the suite's 600 s. Since the tokenizer
# learns the prompts' fixed wording as a few dozen tokens (training/pretrain.py PROMPT_WEIGHT) it
# takes ~305-365 s: pretraining 57-64 s, SFT 221-258 s (2026-12-07, one thread, beside the rest
# of a two-file run).
pytestmark = [pytest.mark.neo4j, pytest.mark.slow, pytest.mark.timeout(2400)]

# 400 pretraining steps and 300 SFT steps of 8 conversations (prompts cut to ~300 clause characters
# by dataset-tiny.yaml, ~200 tokens on average since PROMPT_WEIGHT, ~340 before); make train keeps
# 400 SFT steps for a better demo. 24 paraphrase questions of at most 96 tokens per model.
# Tried on 2026-12-07 with the old tokenizer (one thread each, two runs at a time, the same base and
# dataset; scored on all 37 paraphrase questions, key-fact accuracy over the 23 with key facts):
# 300 steps took 334 s of SFT, +0.086 token F1 and +0.13 key-fact accuracy over the base (paired
# intervals exclude 0); 240 steps took ~225 s and kept the F1 gain (+0.09) but its key-fact gain
# fell to +0.02-0.04 (interval holding 0), with or without LoRA dropout; 150 steps at twice the
# learning rate +0.055 / 0; batches grouped by length cut SFT to 240 s and the gains to +0.045 /
# +0.02. With the prompt-aware tokenizer (the test's own 24 questions, one run each beside another
# run): 300 steps 227-241 s, +0.12 / +0.08 to +0.26 / +0.23 over three runs; 200 steps 150 s,
# +0.09 / 0. So 300 steps stay.
PRETRAIN_STEPS = 400
SFT_STEPS = 300
EVAL_LIMIT = 24


@pytest.fixture(scope="module")
def loop(neo4j_server, neo4j_driver, tmp_path_factory, samples_dir):
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service
    from training.datagen.source import GraphSource
    from training.dataset import DatasetBuilder
    from training.dataset_config import DatasetConfig
    from training.pretrain import TinyBaseConfig, build_pretrained_base
    from training.sft import SftRunner
    from training.sft_config import SftConfig

    with neo4j_driver.session() as s:
        s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    root = tmp_path_factory.mktemp("train-loop")
    home = root / "home"
    report = build_ingest_service(Settings(neo4j_uri=neo4j_server.bolt_uri, home=home), neo4j_driver).ingest(
        [samples_dir / "manuals"]
    )
    assert report.ok, report.failed
    timings: dict[str, float] = {}
    t = time.perf_counter()
    build_pretrained_base(
        root / "base",
        [samples_dir / "src", samples_dir / "manuals"],
        TinyBaseConfig(steps=PRETRAIN_STEPS),
        progress=False,
    )
    timings["pretrain"] = time.perf_counter() - t
    DatasetBuilder.from_config(
        DatasetConfig.load(CONFIGS / "dataset-tiny.yaml"), GraphSource(neo4j_driver)
    ).build(root / "dataset")
    t = time.perf_counter()
    sft = SftRunner(
        SftConfig.load(CONFIGS / "sft-tiny.yaml").with_overrides(max_steps=SFT_STEPS), progress=False
    ).run(root / "base", root / "dataset", root / "sft")
    timings["sft"] = time.perf_counter() - t
    print(f"training loop: {timings}", file=sys.stderr)
    return {"root": root, "home": home, "sft": sft}


def _evaluate(root: Path, adapter: Path | None, out: Path) -> dict:
    from kgqa.wiring import build_generator
    from training.eval_config import EvalConfig
    from training.evaluate import EvalRunner, load_test_sets

    cfg = EvalConfig.load(CONFIGS / "eval-tiny.yaml")
    cfg.limit = EVAL_LIMIT
    cfg.generation.max_new_tokens = 96
    sets = load_test_sets([root / "dataset" / "chat" / "test_paraphrase.jsonl"])
    generator = build_generator(root / "base", adapter, cfg.generation)
    return EvalRunner(cfg, generator, progress=False).run(sets, out)["test_sets"]["paraphrase"]["aggregates"]


def test_sft_beats_its_base_on_the_paraphrase_test_set(loop):
    root = loop["root"]
    base = _evaluate(root, None, root / "eval-base")
    tuned = _evaluate(root, root / "sft", root / "eval-sft")
    assert base["n"] == tuned["n"] == EVAL_LIMIT
    assert tuned["token_f1"] >= base["token_f1"] + 0.08, (base["token_f1"], tuned["token_f1"])
    assert tuned["key_fact_accuracy"] >= base["key_fact_accuracy"] + 0.05, (
        base["key_fact_accuracy"],
        tuned["key_fact_accuracy"],
    )


def test_sft_loss_falls_to_under_a_third(loop):
    metrics = loop["sft"].metrics
    assert metrics["final_train_loss"] < metrics["first_train_loss"] / 3, metrics


@pytest.fixture(scope="module")
def active_model(loop, neo4j_driver):
    """The loop's SFT adapter, registered and activated as `kgqa models activate` does."""
    from kg.registry import ModelRegistry
    from training.registration import register_run

    registry = ModelRegistry(neo4j_driver)
    model = register_run(registry, loop["root"] / "sft", "sft")
    registry.activate(model.model_id)
    return model


@pytest.fixture(scope="module")
def service(loop, active_model, neo4j_server, neo4j_driver):
    """The QA service with the activated adapter, as `kgqa serve` builds it (strict policy)."""
    from kgqa.settings import Settings
    from kgqa.wiring import build_qa_service

    settings = Settings(
        neo4j_uri=neo4j_server.bolt_uri,
        home=loop["home"],
        backend={"kind": "transformers", "no_repeat_ngram": 4, "max_new_tokens": 96},
    )
    svc = build_qa_service(settings, neo4j_driver)
    yield svc
    svc.close()


def test_activated_adapter_serves_answers_with_its_model_id(service, active_model):
    from serving.types import Caller, Role

    result = service.ask(
        "分包单位应当在每月什么时候前报送当期完成工程量申报表？", 3, Caller("test", Role.ADMIN)
    )
    assert active_model.model_id in result.model_id  # the answer names the registry entry it came from
    assert result.citations, result.text  # verified from the adapter, or the extractive fallback
    assert result.status.value == "VERIFIED"  # strict policy: an unverified generation falls back to quotes


REIMBURSE_QUESTION = "经办人员应当在费用发生后多少日内提交报销单？"


def test_after_an_edit_the_adapter_trained_before_it_cannot_state_the_old_value(
    loop, service, active_model, neo4j_server, neo4j_driver
):
    """Issue 14's end-to-end check with a real adapter: it was trained on 三十日; the clause now says 十五日.

    The edit goes through the knowledge managers' editor; the running service follows the graph
    without a restart. Whatever the adapter writes, the strict verifier lets through only what the
    new version supports: the answer says 十五日, never 三十日, and cites version 2.
    """
    from kg.edits import Editor
    from kg.evidence import GraphEvidence
    from kgqa.settings import Settings
    from kgqa.wiring import build_graph_editor
    from serving.types import Caller, Role

    caller = Caller("test", Role.ADMIN)
    before = service.ask(REIMBURSE_QUESTION, 3, caller)
    old = [c for c in before.citations if "三十日" in c.quote]
    assert old, before  # the clause the adapter was trained on, version 1
    clause_id, version = old[0].clause_id, old[0].clause_version
    train = (loop["root"] / "dataset" / "chat" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    taught = [r for r in map(json.loads, train) if clause_id in r["gold_clause_ids"]]
    assert taught, f"{clause_id} is not in the adapter's training set"
    settings = Settings(neo4j_uri=neo4j_server.bolt_uri, home=loop["home"])
    editor = build_graph_editor(settings, neo4j_driver)
    current = GraphEvidence(neo4j_driver).fetch([clause_id])[clause_id].text
    done = editor.edit_clause_text(
        clause_id,
        current.replace("三十日", "十五日"),
        expected_version=version,
        editor=Editor("key-editor0001", "editor"),
        reason="制度修订：报销期限缩短为十五日",
    )
    assert done.version == version + 1
    deadline = time.monotonic() + 30
    while True:
        after = service.ask(REIMBURSE_QUESTION, 3, caller)
        cited = {c.clause_id: c for c in after.citations}
        if clause_id in cited and cited[clause_id].clause_version == done.version:
            break
        assert time.monotonic() < deadline, f"Ask still cites the old version: {after}"
        time.sleep(0.5)
    assert after.status.value == "VERIFIED", (after.model_id, after.text, after.unsupported)
    assert "十五日" in after.text and "三十日" not in after.text, after.text
    assert "十五日" in cited[clause_id].quote
    assert active_model.model_id in after.model_id  # the adapter's answer, or its extractive fallback
