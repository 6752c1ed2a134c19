"""Incremental retraining as a job, on the tiny model with a real Neo4j and real worker processes.

The world: our expense guide ingested, a dataset built from it, a tiny adapter trained on it,
registered and activated; then the guide is changed (三十日 -> 十五日 in one clause, one clause
removed) and re-ingested, so the change log holds a clause update and a retirement.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from retrain_world import NEW, OLD, write_config

from training.retrain import STAGES, gate
from training.retrain_config import RetrainConfig

pytestmark = pytest.mark.neo4j


def _runner(world, config: Path):
    from kgqa.wiring import build_retrain_runner

    world["registry"] = None
    return build_retrain_runner(world["settings"], world["driver"], config)


@pytest.fixture
def runner(world, tmp_path):
    """A runner of the tiny config, with the first model active again."""
    from kg.registry import ModelRegistry

    ModelRegistry(world["driver"]).activate(world["first"].model_id)
    return _runner(
        world,
        write_config(
            tmp_path / "retrain.yaml", world, gate={"margin": 1.0, "metrics": {"token_f1": "higher"}}
        ),
    )


def test_gate_compares_old_test_sets_within_the_margin():
    cfg = RetrainConfig(
        gate={"margin": 0.05, "metrics": {"key_fact_accuracy": "higher", "hallucination_rate": "lower"}}
    )
    parent = {
        "old_paraphrase": {"key_fact_accuracy": 0.5, "hallucination_rate": 0.2},
        "changed": {"key_fact_accuracy": 0.9},
    }
    ok = gate(
        parent,
        {"old_paraphrase": {"key_fact_accuracy": 0.46, "hallucination_rate": 0.24}, "changed": {}},
        cfg,
    )
    assert ok["passed"] and len(ok["checks"]) == 2  # the changed set is not gated: its references moved
    worse = gate(parent, {"old_paraphrase": {"key_fact_accuracy": 0.5, "hallucination_rate": 0.3}}, cfg)
    assert not worse["passed"] and [f["metric"] for f in worse["failures"]] == ["hallucination_rate"]


def _row(i: int, *, key_fact: float, hallucinated: bool) -> dict:
    return {
        "id": f"q{i}",
        "answerable": True,
        "unsupported_count": int(hallucinated),
        "metrics": {"key_fact_recall": key_fact},
    }


def test_gate_checks_carry_the_paired_interval_but_decide_on_the_point_estimates():
    """Eight questions: one key fact lost is a 0.125 loss (over the margin) and no evidence of one."""
    cfg = RetrainConfig(gate={"margin": 0.05, "metrics": {"key_fact_accuracy": "higher"}})
    before = [_row(i, key_fact=1.0 if i < 4 else 0.0, hallucinated=False) for i in range(8)]
    after = [_row(i, key_fact=1.0 if i < 3 else 0.0, hallucinated=False) for i in range(8)]
    verdict = gate(
        {"old_paraphrase": {"key_fact_accuracy": 0.5}},
        {"old_paraphrase": {"key_fact_accuracy": 0.375}},
        cfg,
        ({"old_paraphrase": before}, {"old_paraphrase": after}),
    )
    assert not verdict["passed"]  # held for an admin ...
    difference = verdict["checks"][0]["difference"]
    assert difference["n"] == 8 and difference["delta"] == -0.125
    assert (
        difference["low"] < 0 <= difference["high"] and not difference["significant"]
    )  # ... who sees it may be noise
    lost_all = [_row(i, key_fact=0.0, hallucinated=False) for i in range(8)]
    clear = gate(
        {"old_paraphrase": {"key_fact_accuracy": 0.5}},
        {"old_paraphrase": {"key_fact_accuracy": 0.0}},
        cfg,
        ({"old_paraphrase": before}, {"old_paraphrase": lost_all}),
    )
    assert clear["checks"][0]["difference"]["significant"] and clear["checks"][0]["difference"]["high"] < 0


def test_dry_run_lists_the_delta_and_trains_nothing(world, runner):
    from kg.jobs import JobStore

    store = JobStore(world["driver"])
    jobs_before = [j.job_id for j in store.list()]
    plan = runner.plan()
    assert plan.parent_model_id == world["first"].model_id
    assert plan.since == world["first"].graph_version < plan.graph_version
    assert world["changed"] in plan.changed and world["removed"] in plan.retired
    assert plan.old_pairs_touched > 0
    assert [j.job_id for j in store.list()] == jobs_before  # a dry run creates no job
    assert not runner.jobs_dir.exists() or not any(runner.jobs_dir.iterdir())

    env = {
        **os.environ,
        "KGQA_NEO4J_URI": world["settings"].neo4j_uri,
        "KGQA_HOME": str(world["settings"].home),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kgqa",
            "retrain",
            "--dry-run",
            "--json",
            "--config",
            str(runner.config.source),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["changed"] == plan.changed
    assert [j.job_id for j in store.list()] == jobs_before


def test_job_runs_every_stage_and_registers_a_child_of_the_active_model(world, runner):
    from kg.jobs import JobState
    from kg.registry import ModelRegistry
    from training.dataset import load_manifest
    from training.retrain_data import RETIRED_ANSWER
    from training.run_artifacts import read_jsonl

    job = runner.run(runner.create(None, "test").job_id)
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.stages_done == list(STAGES)
    assert [h["stage"] for h in job.history if h["event"] == "started"] == list(STAGES)

    folder = runner.job_dir(job.job_id)
    train = read_jsonl(folder / "train_data" / "chat" / "train.jsonl")
    assert any(NEW in r["reference"] for r in train)  # the new value is taught
    assert not any(OLD in r["reference"] for r in train)  # the old one is not
    assert any(r["reference"] == RETIRED_ANSWER for r in train)  # the removed clause is refused
    counts = job.result["dataset"]
    assert 0 < counts["pairs_generated"] < counts["dataset_pairs"]  # only the delta was regenerated
    assert counts["training_set"]["replayed"] > 0

    registry = ModelRegistry(world["driver"])
    model = registry.get(job.result["register"]["model_id"])
    assert model.parent_id == world["first"].model_id
    assert model.graph_version == job.result["delta"]["graph_version"] > world["first"].graph_version
    assert model.dataset_hash == load_manifest(folder / "dataset")["dataset_hash"]
    assert registry.active().model_id == model.model_id  # the gate passed: activated
    prov = json.loads((folder / "adapter" / "provenance.json").read_text(encoding="utf-8"))
    assert prov["parent"]["path"] == str(
        Path(world["first"].adapter_path).resolve()
    )  # continued, not from scratch
    assert job.result["train"]["steps"] == 4 and "changed" in job.result["evaluate"]["new"]


def test_gate_failure_leaves_the_model_waiting_for_an_admin(world, tmp_path):
    from kg.jobs import JobState
    from kg.registry import ModelRegistry

    registry = ModelRegistry(world["driver"])
    registry.activate(world["first"].model_id)
    # a negative margin demands an improvement no tiny retrain makes: the gate must block activation
    config = write_config(
        tmp_path / "strict.yaml", world, gate={"margin": -0.5, "metrics": {"token_f1": "higher"}}
    )
    runner = _runner(world, config)
    job = runner.run(runner.create(None, "test").job_id)
    assert job.state is JobState.WAITING_APPROVAL, job.error
    assert not job.result["evaluate"]["gate"]["passed"] and job.result["activate"]["activated"] is None
    failure = job.result["evaluate"]["gate"]["failures"][0]
    assert failure["difference"]["n"] >= 1 and {"low", "high", "significant"} <= set(failure["difference"])
    assert registry.active().model_id == world["first"].model_id
    approved = runner.approve(job.job_id)
    assert approved.state is JobState.SUCCEEDED
    assert registry.active().model_id == job.result["register"]["model_id"]


def test_a_job_waits_while_another_trains_and_can_be_cancelled_waiting(world, runner):
    from kg.jobs import JobState, JobStore

    store = JobStore(world["driver"])
    other = store.create("retrain", params={}, since_graph_version=0, actor="other")
    store.update(other.job_id, state=JobState.RUNNING)
    assert store.claim(other.job_id)
    job = runner.create(None, "test")
    thread = threading.Thread(target=runner.run, args=(job.job_id,))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not any(h["event"] == "waiting" for h in store.get(job.job_id).history):
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.2)
        waiting = store.get(job.job_id)
        assert waiting.stage == "train" and store.holder() == other.job_id
        assert not any(h["event"] == "training" for h in waiting.history)  # never trained beside the other
        store.request_cancel(job.job_id)
        thread.join(60)
        assert not thread.is_alive()
    finally:
        store.update(other.job_id, state=JobState.CANCELLED)
        store.release(other.job_id)
    ended = store.get(job.job_id)
    assert ended.state is JobState.CANCELLED and "train" not in ended.stages_done
    assert store.holder() is None


def test_a_killed_worker_resumes_from_its_last_finished_stage(world, runner, tmp_path):
    from kg.jobs import JobState, JobStore

    config = write_config(
        tmp_path / "slow.yaml",
        world,
        max_steps=10,
        save_steps=2,
        eval_limit=2,
        sft={"max_length": 1024, "per_device_train_batch_size": 2},
    )
    env = {
        **os.environ,
        "KGQA_NEO4J_URI": world["settings"].neo4j_uri,
        "KGQA_HOME": str(world["settings"].home),
        "KGQA_RETRAIN_CONFIG": str(config),
    }
    job = runner.create(None, "test")
    store = JobStore(world["driver"])
    ckpts = runner.job_dir(job.job_id) / "adapter" / "checkpoints"
    worker = subprocess.Popen(
        [sys.executable, "-m", "kgqa", "jobs", "run", job.job_id],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 240
        # a checkpoint written to the end (the kill may still land in the middle of the next one)
        while not (ckpts.is_dir() and any(ckpts.glob("checkpoint-*/trainer_state.json"))):
            assert worker.poll() is None, worker.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    killed = store.get(job.job_id)
    assert killed.state is JobState.RUNNING and killed.stage == "train"
    assert killed.stages_done == ["delta", "dataset"]

    proc = subprocess.run(
        [sys.executable, "-m", "kgqa", "jobs", "resume", job.job_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = store.get(job.job_id)
    assert done.state is JobState.SUCCEEDED, done.error
    started = [h["stage"] for h in done.history if h["event"] == "started"]
    assert started.count("delta") == started.count("dataset") == 1  # not redone
    assert started.count("train") == 2
    assert done.result["train"]["resumed_from"]  # training went on from its checkpoint
    assert done.result["train"]["steps"] == 10


def test_a_job_started_through_the_service_runs_in_a_worker_process(world, runner, tmp_path):
    """The servers' path: JobsService creates the job and a worker process runs it to the end."""
    from kg.jobs import JobState
    from kgqa.errors import PermissionDenied
    from kgqa.wiring import build_jobs_service
    from serving.types import Caller, Role

    settings = world["settings"].model_copy(
        update={"retrain_config": write_config(tmp_path / "api.yaml", world)}
    )
    service = build_jobs_service(settings, world["driver"])
    with pytest.raises(PermissionDenied):
        service.start_retrain(Caller("key-editor", Role.EDITOR))
    job = service.start_retrain(Caller("key-admin", Role.ADMIN))
    assert job.worker_pid and job.worker_pid != os.getpid() and job.actor == "key-admin"
    deadline = time.monotonic() + 240
    while not (job := service.get(Caller("key-admin", Role.ADMIN), job.job_id)).state.finished:
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    log = (settings.home / "jobs" / job.job_id / "worker.log").read_text(encoding="utf-8", errors="replace")
    assert job.state is JobState.SUCCEEDED, (job.error, log[-2000:])
    assert {h["pid"] for h in job.history if "pid" in h} == {service.launch.process(job.job_id).pid}


def test_cancel_stops_training_between_steps(world, runner, tmp_path):
    from kg.jobs import JobState, JobStore
    from kg.registry import ModelRegistry

    config = write_config(
        tmp_path / "long.yaml",
        world,
        max_steps=500,
        sft={"max_length": 1024, "per_device_train_batch_size": 2},
    )
    long_runner = _runner(world, config)
    models_before = {m.model_id for m in ModelRegistry(world["driver"]).list()}
    job = long_runner.create(None, "test")
    store = JobStore(world["driver"])
    ended = {}
    thread = threading.Thread(target=lambda: ended.setdefault("job", long_runner.run(job.job_id)))
    thread.start()
    deadline = time.monotonic() + 180
    while not any(h["event"] == "training" for h in store.get(job.job_id).history):
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.2)
    time.sleep(3)  # a few steps in
    store.request_cancel(job.job_id)
    thread.join(120)
    assert not thread.is_alive()
    done = ended["job"]
    assert done.state is JobState.CANCELLED and "train" not in done.stages_done
    assert 0 < done.progress < 1
    assert {m.model_id for m in ModelRegistry(world["driver"]).list()} == models_before  # nothing registered
    assert store.holder() is None


def test_changes_trigger_a_debounced_retrain_once(world, runner, tmp_path):
    from kg.jobs import JobState
    from kgqa.wiring import build_jobs_service
    from serving.retrain_trigger import TRIGGER_CALLER, RetrainTrigger
    from serving.types import Caller, Role

    settings = world["settings"].model_copy(
        update={"retrain_config": write_config(tmp_path / "t.yaml", world)}
    )
    service = build_jobs_service(settings, world["driver"])
    admin = Caller("key-admin", Role.ADMIN)

    def finish(job_id: str) -> None:  # cancel the triggered job and wait for its worker to stop
        service.cancel(admin, job_id)
        deadline = time.monotonic() + 120
        while not service.get(admin, job_id).state.finished:
            assert time.monotonic() < deadline
            time.sleep(0.3)

    by_count = RetrainTrigger(service, world["driver"], after_changes=3, after_minutes=None)
    assert by_count.check() is None  # two clauses changed since the active model: below 3
    by_count.after_changes = 2
    job_id = by_count.check()
    assert job_id and service.get(admin, job_id).actor == TRIGGER_CALLER.key_id
    assert by_count.check() is None  # a retrain is already under way
    finish(job_id)
    assert service.get(admin, job_id).state is JobState.CANCELLED
    assert by_count.check() is None  # not twice for the same graph version

    by_time = RetrainTrigger(service, world["driver"], after_changes=None, after_minutes=0.002)
    assert by_time.check() is None  # first sight of the pending changes starts the clock
    time.sleep(0.2)
    job_id = by_time.check()
    assert job_id
    finish(job_id)
