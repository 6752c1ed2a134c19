"""Incremental retraining as a job: delta -> dataset -> train -> evaluate -> register -> activate.

``RetrainRunner.run(job_id)`` runs the stages of a :class:`kg.jobs.Job` in order. Each stage writes
its output under ``$KGQA_HOME/jobs/<job id>/`` (``<stage>.json`` plus its folders) and is then
recorded as done on the Job node; a worker started again on the same job skips the stages done
(a killed training resumes from its last checkpoint). Between stages, and between training steps,
the runner reads the job's cancel flag. Training, evaluation and registration happen under the
graph's single ``trainer`` lock, so two jobs never train at once; a job that finds it taken waits
(its history says for whom) and can be cancelled while it waits.

The stages:

1. ``delta``: the clauses changed, new and retired since ``since`` (default: the active model's
   graph version), and the parent: the active model, its adapter and its dataset.
2. ``dataset``: the parent's dataset rebuilt incrementally (pairs regenerated only for the delta,
   the rest carried over), then the delta training folder (:mod:`training.retrain_data`).
3. ``train``: LoRA SFT continued from the parent's adapter on delta + replay for ``epochs``.
4. ``evaluate``: both models on the changed clauses, the retired ones and the old test sets; the
   regression gate compares them.
5. ``register``: a ModelVersion with its parent, graph version and dataset hash.
6. ``activate``: only if the gate passed (and ``auto_activate``); otherwise the job ends
   ``waiting_approval`` and an admin decides (``kgqa jobs approve``).
"""

from __future__ import annotations

import gc
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import neo4j
import structlog

from kg.delta import GraphDelta, read_delta
from kg.jobs import Job, JobState, JobStore, now
from kg.registry import ModelRegistry, ModelVersion
from kgqa.errors import ConfigError, JobCancelled, JobStateError
from training.datagen.source import GraphSource
from training.dataset import DatasetBuilder
from training.dataset_config import DatasetConfig
from training.eval_config import EvalConfig
from training.evaluate import EvalRunner, read_predictions, read_records
from training.generation import Generator
from training.metrics.bootstrap import INTERVAL_METRICS, paired_difference
from training.registration import register_run
from training.retrain_config import RetrainConfig
from training.retrain_data import (
    build_training_set,
    dataset_of_adapter,
    pairs_touching,
    seed_incremental_build,
)
from training.run_artifacts import read_json, write_json
from training.sft import SftRunner
from training.sft_config import SftConfig

log = structlog.get_logger(__name__)

STAGES = ("delta", "dataset", "train", "evaluate", "register", "activate")
JOB_KIND = "retrain"
#: The metrics evaluation computes for the gate (no encoder, no perplexity pass: the job stays cheap).
EVAL_METRICS = ["key_facts", "token_f1", "citations", "verification"]

GeneratorFactory = Callable[[Path, Path | None, Any], Generator]
RowsBySet = Mapping[str, Sequence[Mapping[str, Any]]]
"""One model's evaluated rows by test set name (``read_predictions``)."""


@dataclass(frozen=True)
class RetrainPlan:
    """What a retrain would do (``--dry-run``): nothing is built or trained."""

    since: int
    graph_version: int
    parent_model_id: str
    changed: list[str]
    new: list[str]
    retired: list[str]
    old_pairs_touched: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def gate(
    parent: dict[str, dict[str, Any]],
    new: dict[str, dict[str, Any]],
    config: RetrainConfig,
    rows: tuple[RowsBySet, RowsBySet] | None = None,
) -> dict[str, Any]:
    """The regression gate over the old test sets: every gated metric of the new model may be worse
    than the parent's by at most ``config.gate.margin``.

    The decision reads the point estimates: on the few questions a job evaluates, a model is held
    for an admin on a loss that may be noise rather than activated on one that may be real. So that
    the admin can tell which, each check also carries the paired bootstrap interval of the change
    (``difference``: new - parent over the questions both answered) when ``rows`` holds both
    models' per-question rows (``read_predictions``).

    Args:
        parent, new: ``test set name -> aggregates`` of both models (only ``old_*`` sets are gated).
        rows: ``(parent rows, new rows)``, each ``test set name -> rows``.

    Returns:
        ``{"passed": bool, "margin": m, "checks": [...], "failures": [...]}``; a metric missing on
        either side is not checked (and listed with ``skipped``).
    """
    margin = config.gate.margin
    checks: list[dict[str, Any]] = []
    for name in sorted(set(parent) & set(new)):
        if not name.startswith("old_"):
            continue
        for metric, direction in config.gate.metrics.items():
            before, after = parent[name].get(metric), new[name].get(metric)
            if before is None or after is None:
                checks.append({"set": name, "metric": metric, "skipped": True})
                continue
            loss = (before - after) if direction == "higher" else (after - before)
            check = {
                "set": name,
                "metric": metric,
                "parent": before,
                "new": after,
                "loss": round(loss, 6),
                "ok": loss <= margin + 1e-12,
            }
            if rows is not None and metric in INTERVAL_METRICS:
                found = paired_difference(rows[0].get(name, []), rows[1].get(name, []), metric)
                if found is not None:
                    check["difference"] = {
                        k: round(v, 4) if isinstance(v, float) else v for k, v in found.items()
                    }
            checks.append(check)
    failures = [c for c in checks if c.get("ok") is False]
    return {"passed": not failures, "margin": margin, "checks": checks, "failures": failures}


class _JobCallback:
    """A ``TrainerCallback`` that reports progress and stops training when the job is cancelled."""

    def __init__(self, runner: RetrainRunner, job: Job, interval_s: float = 1.0) -> None:
        from transformers import TrainerCallback

        outer = self

        class Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers' signature
                outer.step(state, control)

        self.callback = Callback()
        self.cancelled = False
        self._runner, self._job, self._interval = runner, job, interval_s
        self._last = 0.0

    def step(self, state, control) -> None:  # noqa: ANN001
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        if self._runner.store.cancel_requested(self._job.job_id):
            self.cancelled = True
            control.should_training_stop = True
            return
        fraction = state.global_step / state.max_steps if state.max_steps else 0.0
        self._runner.store.update(
            self._job.job_id, progress=self._runner.progress("train", fraction), result=self._job.result
        )


class RetrainRunner:
    """Runs retrain jobs (and dry runs) against one graph.

    Args:
        driver: an open ``neo4j.Driver``.
        config: the retrain settings.
        jobs_dir: where job folders go (``$KGQA_HOME/jobs``).
        make_generator: builds an evaluation generator for ``(base, adapter, generation config)``
            (``kgqa.wiring.build_generator``).
        database: the Neo4j database (None: the server's default).
        device: the training device (None: CUDA when available).
    """

    def __init__(
        self,
        driver: neo4j.Driver,
        config: RetrainConfig,
        jobs_dir: Path,
        make_generator: GeneratorFactory,
        *,
        database: str | None = None,
        device: str | None = None,
    ) -> None:
        self.driver = driver
        self.database = database
        self.config = config
        self.jobs_dir = Path(jobs_dir)
        self.make_generator = make_generator
        self.device = device
        self.store = JobStore(driver, database)
        self.registry = ModelRegistry(driver, database)

    # -- planning -------------------------------------------------------------------------------

    def parent(self) -> ModelVersion:
        """The active model, which a retrain continues.

        Raises:
            JobStateError: no model is active, or it has no adapter.
        """
        active = self.registry.active()
        if active is None or not active.adapter_path:
            raise JobStateError(
                "no active model with an adapter to continue; train one (kgqa train sft), register "
                "and activate it (kgqa models activate RUN_DIR) before retraining"
            )
        return active

    def resolve_since(self, since: int | None, parent: ModelVersion) -> int:
        if since is not None:
            return since
        if parent.graph_version is None:
            raise ConfigError(f"the active model {parent.model_id} records no graph version; pass --since")
        return int(parent.graph_version)

    def plan(self, since: int | None = None) -> RetrainPlan:
        """What a job started now would regenerate, turn into refusals and replay against."""
        parent = self.parent()
        since = self.resolve_since(since, parent)
        delta = read_delta(self.driver, since, self.database)
        old = dataset_of_adapter(Path(parent.adapter_path or ""))
        return RetrainPlan(
            since=since,
            graph_version=delta.graph_version,
            parent_model_id=parent.model_id,
            changed=delta.ids("changed"),
            new=delta.ids("new"),
            retired=delta.ids("retired"),
            old_pairs_touched=pairs_touching(old, delta.ids()),
        )

    def create(self, since: int | None, actor: str, params: dict[str, Any] | None = None) -> Job:
        """A queued retrain job (checked: an active model exists and ``since`` is known)."""
        parent = self.parent()
        since = self.resolve_since(since, parent)
        return self.store.create(
            JOB_KIND,
            params={**(params or {}), "since": since, "config": self.config.source},
            since_graph_version=since,
            actor=actor,
        )

    # -- running --------------------------------------------------------------------------------

    @staticmethod
    def progress(stage: str, fraction: float = 0.0) -> float:
        """Overall progress when ``stage`` is ``fraction`` done (training weighs as three stages)."""
        weights = {"delta": 1, "dataset": 2, "train": 6, "evaluate": 3, "register": 1, "activate": 1}
        total = sum(weights.values())
        before = sum(weights[s] for s in STAGES[: STAGES.index(stage)])
        return round((before + weights[stage] * fraction) / total, 4)

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def run(self, job_id: str) -> Job:
        """Run (or resume) a job to its end; returns the job as it ended.

        Raises:
            JobStateError: the job has already ended.
        """
        job = self.store.get(job_id)
        if job.state.finished:
            raise JobStateError(f"job {job_id} is {job.state.value}; nothing to run")
        folder = self.job_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        job = self.store.update(
            job_id,
            state=JobState.RUNNING,
            worker_pid=os.getpid(),
            worker_host=socket.gethostname(),
            started_at=job.started_at or now(),
        )
        final = JobState.SUCCEEDED
        try:
            for stage in STAGES:
                if stage in job.stages_done:
                    continue
                self._check_cancel(job)
                job = self.store.update(job_id, stage=stage, progress=self.progress(stage))
                job = self.store.record(job, stage, "started", pid=os.getpid())
                output = getattr(self, f"_stage_{stage}")(job, folder)
                write_json(folder / f"{stage}.json", output)
                job.result[stage] = output
                job.stages_done.append(stage)
                job = self.store.update(
                    job_id,
                    stages_done=job.stages_done,
                    result=job.result,
                    progress=self.progress(stage, 1.0),
                )
                job = self.store.record(job, stage, "finished", pid=os.getpid())
                if output.get("stop"):
                    final = JobState(output["stop"])
                    break
            job = self.store.update(job_id, state=final, progress=1.0, finished_at=now(), worker_pid=None)
        except JobCancelled:
            job = self.store.update(job_id, state=JobState.CANCELLED, finished_at=now(), worker_pid=None)
        except Exception as exc:
            log.exception("retrain.failed", job_id=job_id)
            self.store.update(
                job_id,
                state=JobState.FAILED,
                error=f"{type(exc).__name__}: {exc}",
                finished_at=now(),
                worker_pid=None,
            )
            raise
        finally:
            self.store.release(job_id)
        log.info("retrain.done", job_id=job_id, state=job.state.value)
        return job

    def _check_cancel(self, job: Job) -> None:
        if self.store.cancel_requested(job.job_id):
            raise JobCancelled(f"job {job.job_id} was cancelled")

    def _hold_trainer(self, job: Job) -> None:
        """Wait for the single-trainer lock (checking the cancel flag while waiting)."""
        waiting = False
        while not self.store.claim(job.job_id):
            self._check_cancel(job)
            if not waiting:
                self.store.record(job, job.stage or "train", "waiting", holder=self.store.holder())
                waiting = True
            time.sleep(self.config.poll_s)

    # -- stages ---------------------------------------------------------------------------------

    def _stage_delta(self, job: Job, folder: Path) -> dict[str, Any]:
        parent = self.parent()
        since = self.resolve_since(job.since_graph_version, parent)
        delta = read_delta(self.driver, since, self.database)
        old = dataset_of_adapter(Path(parent.adapter_path or ""))
        out = {
            "since": since,
            "graph_version": delta.graph_version,
            "changed": delta.ids("changed"),
            "new": delta.ids("new"),
            "retired": delta.ids("retired"),
            "clauses": [asdict(c) for c in delta.clauses],
            "parent": {
                "model_id": parent.model_id,
                "adapter_path": parent.adapter_path,
                "base_path": parent.base_path,
                "dataset_dir": str(old),
            },
        }
        if delta.empty:
            out["stop"] = JobState.SUCCEEDED.value
            out["note"] = f"nothing changed after graph version {since}"
        return out

    def _delta(self, folder: Path) -> tuple[GraphDelta, dict[str, Any]]:
        from kg.delta import ClauseDelta

        data = read_json(folder / "delta.json")
        clauses = tuple(
            ClauseDelta(c["clause_id"], c["kind"], tuple(c["ops"]), c["last_seq"], c["version"])
            for c in data["clauses"]
        )
        return GraphDelta(data["since"], data["graph_version"], clauses), data["parent"]

    def _stage_dataset(self, job: Job, folder: Path) -> dict[str, Any]:
        delta, parent = self._delta(folder)
        old = Path(parent["dataset_dir"])
        new = folder / "dataset"
        started = time.perf_counter()
        seed_incremental_build(old, new)
        builder = DatasetBuilder.from_config(
            DatasetConfig.load(self.config.dataset_config), GraphSource(self.driver, self.database)
        )
        built = builder.build(new, since=delta.since)
        counts = build_training_set(
            new,
            old,
            delta,
            folder / "train_data",
            replay_ratio=self.config.replay_ratio,
            replay_min=self.config.replay_min,
            seed=self.config.seed,
        )
        return {
            "pairs_generated": pairs_touching(new, delta.ids("changed", "new")) + counts.refusals,
            "dataset_pairs": built.pairs,
            "graph_version": built.graph_version,
            "dataset_hash": built.dataset_hash,
            "training_set": counts.to_dict(),
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _stage_train(self, job: Job, folder: Path) -> dict[str, Any]:
        _, parent = self._delta(folder)
        self._hold_trainer(job)
        self.store.record(job, "train", "training", pid=os.getpid())
        cfg = SftConfig.load(self.config.sft_config).with_overrides(
            **self.config.sft,
            max_steps=self.config.max_steps,
            num_train_epochs=self.config.epochs,
            save_steps=self.config.save_steps,
            eval_steps=self.config.save_steps,
        )
        out = folder / "adapter"
        callback = _JobCallback(self, job)
        started = time.perf_counter()
        result = SftRunner(cfg, device=self.device, progress=False).run(
            Path(parent["base_path"]),
            folder / "train_data",
            out,
            resume=(out / "checkpoints").is_dir(),
            init_adapter=Path(parent["adapter_path"]),
            callbacks=[callback.callback],
        )
        if callback.cancelled:
            raise JobCancelled(f"job {job.job_id} was cancelled during training")
        return {
            "steps": result.steps,
            "resumed_from": result.resumed_from,
            "train_loss": result.train_loss,
            "eval_loss": result.eval_loss,
            "seconds": round(time.perf_counter() - started, 3),
            "adapter": str(out),
        }

    def eval_config(self) -> EvalConfig:
        cfg = EvalConfig.load(self.config.eval_config)
        cfg.metrics = [m for m in cfg.metrics if m in EVAL_METRICS]
        cfg.limit = self.config.eval_limit
        if self.config.eval_max_new_tokens:
            cfg.generation.max_new_tokens = self.config.eval_max_new_tokens
        return cfg

    def evaluate(self, base: Path, adapter: Path | None, data: Path, out: Path) -> dict[str, dict[str, Any]]:
        """``set name -> aggregates`` of one model on a delta folder's eval sets (``eval/*.jsonl``)."""
        cfg = self.eval_config()
        sets = {
            f.stem: read_records(f)
            for f in sorted((data / "eval").glob("*.jsonl"))
            if f.read_text(encoding="utf-8").strip()
        }
        generator = self.make_generator(base, adapter, cfg.generation)
        try:
            report = EvalRunner(cfg, generator, progress=False).run(sets, out)
        finally:
            del generator
            gc.collect()
        return {name: s["aggregates"] for name, s in report["test_sets"].items()}

    def _stage_evaluate(self, job: Job, folder: Path) -> dict[str, Any]:
        _, parent = self._delta(folder)
        self._hold_trainer(job)
        base = Path(parent["base_path"])
        data = folder / "train_data"
        started = time.perf_counter()
        before = self.evaluate(base, Path(parent["adapter_path"]), data, folder / "eval" / "parent")
        self._check_cancel(job)
        after = self.evaluate(base, folder / "adapter", data, folder / "eval" / "new")
        rows = (read_predictions(folder / "eval" / "parent"), read_predictions(folder / "eval" / "new"))
        verdict = gate(before, after, self.config, rows)
        keep = (
            "n",
            "key_fact_accuracy",
            "token_f1",
            "hallucination_rate",
            "citation_f1",
            "correct_refusal_rate",
        )
        return {
            "parent": {n: {k: a.get(k) for k in keep} for n, a in before.items()},
            "new": {n: {k: a.get(k) for k in keep} for n, a in after.items()},
            "gate": verdict,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _stage_register(self, job: Job, folder: Path) -> dict[str, Any]:
        _, parent = self._delta(folder)
        model = register_run(self.registry, folder / "adapter", "sft", parent_id=parent["model_id"])
        evaluation = read_json(folder / "evaluate.json")
        self.registry.add_metrics(
            model.model_id,
            {"retrain": {"job_id": job.job_id, "new": evaluation["new"], "gate": evaluation["gate"]}},
        )
        return {
            "model_id": model.model_id,
            "parent_id": model.parent_id,
            "graph_version": model.graph_version,
            "dataset_hash": model.dataset_hash,
        }

    def _stage_activate(self, job: Job, folder: Path) -> dict[str, Any]:
        model_id = read_json(folder / "register.json")["model_id"]
        passed = bool(read_json(folder / "evaluate.json")["gate"]["passed"])
        if passed and self.config.auto_activate:
            self.registry.activate(model_id)
            return {"activated": model_id}
        reason = "the regression gate failed" if not passed else "auto_activate is off"
        return {"activated": None, "reason": reason, "stop": JobState.WAITING_APPROVAL.value}

    # -- after the job --------------------------------------------------------------------------

    def approve(self, job_id: str) -> Job:
        """An admin activates the model of a job that waits for approval.

        Raises:
            JobStateError: the job is not waiting for approval.
        """
        job = self.store.get(job_id)
        if job.state is not JobState.WAITING_APPROVAL:
            raise JobStateError(f"job {job_id} is {job.state.value}, not waiting for approval")
        model_id = job.result["register"]["model_id"]
        self.registry.activate(model_id)
        job.result["activate"] = {"activated": model_id, "approved": True}
        return self.store.update(job_id, state=JobState.SUCCEEDED, result=job.result)


__all__ = ["EVAL_METRICS", "JOB_KIND", "STAGES", "RetrainPlan", "RetrainRunner", "gate"]
