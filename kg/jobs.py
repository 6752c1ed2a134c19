"""Long-running jobs (incremental retraining) as ``Job`` nodes, and the single-trainer lock.

A job lives in the graph beside the models it produces, so every server and CLI that reaches the
graph sees the same jobs: their state, the stage they are in, their progress and the stages
already finished. A worker process runs the stages; it writes each stage's output under
``$KGQA_HOME/jobs/<job id>/`` and records the stage as done here, so a worker killed mid-job is
started again and skips what is done. Cancellation is a flag on the node that the worker reads
between stages and between training steps.

Two jobs never train at once: training is guarded by the ``trainer`` :class:`Lock <JobStore.claim>`
node, claimed in one transaction (a unique constraint on the name, the holder read under the
node's write lock). A holder whose job has ended no longer holds it, so a crashed job never
blocks the next one for good once it is cancelled.
"""

from __future__ import annotations

import enum
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import neo4j

from kg import queries as q
from kg.session import GraphSession
from kgqa.errors import NotFound

TRAINER_LOCK = "trainer"


class JobState(enum.StrEnum):
    """Where a job is in its life; the last four are final (``waiting_approval`` waits for an admin)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WAITING_APPROVAL = "waiting_approval"

    @property
    def finished(self) -> bool:
        """No worker runs it any more (an admin may still approve a waiting one)."""
        return self not in (JobState.QUEUED, JobState.RUNNING)


def now() -> str:
    """The time stamps jobs carry: ISO-8601 UTC with milliseconds (they order events of one run)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Job:
    """One job.

    Attributes:
        job_id: ``<kind>-<12 hex>``; also the name of its folder under ``$KGQA_HOME/jobs``.
        kind: what it does (``retrain``).
        state: see :class:`JobState`.
        stage: the stage running now (or the last one that ran).
        stages_done: the stages finished, in order; a resumed worker skips them.
        progress: 0..1 over all stages.
        since_graph_version: the graph version the job's delta starts after.
        params: what it was started with (JSON-serializable).
        result: what its stages reported (pairs, steps, metrics, the model registered, the gate).
        history: one entry per stage run (stage, event, at, pid): a resumed stage shows twice.
        error: why it failed.
        cancel_requested: an admin asked it to stop.
        worker_pid, worker_host: the process running it (None when none is).
        actor: the key id (or ``cli:<user>``) that started it.
    """

    job_id: str
    kind: str
    state: JobState
    stage: str | None = None
    stages_done: list[str] = field(default_factory=list)
    progress: float = 0.0
    since_graph_version: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    cancel_requested: bool = False
    worker_pid: int | None = None
    worker_host: str | None = None
    actor: str = ""
    created_at: str = ""
    updated_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON view for the CLI's ``--json`` and the REST API."""
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "state": self.state.value,
            "stage": self.stage,
            "stages_done": list(self.stages_done),
            "progress": self.progress,
            "since_graph_version": self.since_graph_version,
            "params": self.params,
            "result": self.result,
            "history": self.history,
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "worker_pid": self.worker_pid,
            "worker_host": self.worker_host,
            "actor": self.actor,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def _from_record(row: dict[str, Any]) -> Job:
    return Job(
        job_id=row["job_id"],
        kind=row["kind"],
        state=JobState(row["state"]),
        stage=row.get("stage"),
        stages_done=list(row.get("stages_done") or []),
        progress=float(row.get("progress") or 0.0),
        since_graph_version=row.get("since_graph_version"),
        params=json.loads(row.get("params_json") or "{}"),
        result=json.loads(row.get("result_json") or "{}"),
        history=json.loads(row.get("history_json") or "[]"),
        error=row.get("error"),
        cancel_requested=bool(row.get("cancel_requested")),
        worker_pid=row.get("worker_pid"),
        worker_host=row.get("worker_host"),
        actor=row.get("actor") or "",
        created_at=row.get("created_at") or "",
        updated_at=row.get("updated_at") or "",
        started_at=row.get("started_at"),
        finished_at=row.get("finished_at"),
    )


_JSON_FIELDS = {"params": "params_json", "result": "result_json", "history": "history_json"}


class JobStore:
    """Job nodes and locks over Bolt.

    Args:
        driver: an open ``neo4j.Driver``.
        database: target database; ``None`` uses the server default.
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None) -> None:
        self._graph = GraphSession(driver, database)
        self._schema_done = False

    def ensure_schema(self) -> None:
        """The unique constraints on job ids and lock names (idempotent, once per store)."""
        if not self._schema_done:
            for statement in q.JOB_SCHEMA:
                self._graph.write(statement)
            self._schema_done = True

    def create(
        self, kind: str, *, params: dict[str, Any], since_graph_version: int | None, actor: str
    ) -> Job:
        """A new queued job."""
        self.ensure_schema()
        rows = self._graph.write(
            q.JOB_CREATE,
            j={
                "job_id": f"{kind}-{uuid.uuid4().hex[:12]}",
                "kind": kind,
                "state": JobState.QUEUED.value,
                "stage": None,
                "since_graph_version": since_graph_version,
                "params_json": json.dumps(params, ensure_ascii=False, sort_keys=True),
                "actor": actor,
                "created_at": now(),
            },
        )
        return _from_record(rows[0]["j"])

    def get(self, job_id: str) -> Job:
        """Raises: NotFound: no such job."""
        rows = self._graph.read(q.JOB_GET, job_id=job_id)
        if not rows:
            raise NotFound(f"no job {job_id!r}; see kgqa jobs list")
        return _from_record(rows[0]["j"])

    def list(self, *, state: JobState | None = None, limit: int = 50) -> list[Job]:
        """Jobs newest first, optionally of one state."""
        rows = self._graph.read(q.JOB_LIST, state=state.value if state else None, limit=limit)
        return [_from_record(r["j"]) for r in rows]

    def update(self, job_id: str, **fields: Any) -> Job:
        """Set some fields (``state`` as a JobState, ``params``/``result``/``history`` as Python values).

        Raises:
            NotFound: no such job.
        """
        values: dict[str, Any] = {"updated_at": now()}
        for name, value in fields.items():
            if name in _JSON_FIELDS:
                values[_JSON_FIELDS[name]] = json.dumps(value, ensure_ascii=False, sort_keys=True)
            elif isinstance(value, enum.Enum):
                values[name] = value.value
            else:
                values[name] = value
        rows = self._graph.write(q.JOB_UPDATE, job_id=job_id, set=values)
        if not rows:
            raise NotFound(f"no job {job_id!r}; see kgqa jobs list")
        return _from_record(rows[0]["j"])

    def record(self, job: Job, stage: str, event: str, **extra: Any) -> Job:
        """Append a history entry (``started``, ``finished``, ``waiting`` ...) for ``stage``."""
        entry = {"stage": stage, "event": event, "at": now(), **extra}
        job.history.append(entry)
        return self.update(job.job_id, history=job.history)

    def request_cancel(self, job_id: str) -> Job:
        """Raise the job's cancel flag (its worker stops at the next check)."""
        rows = self._graph.write(q.JOB_REQUEST_CANCEL, job_id=job_id, at=now())
        if not rows:
            raise NotFound(f"no job {job_id!r}; see kgqa jobs list")
        return _from_record(rows[0]["j"])

    def cancel_requested(self, job_id: str) -> bool:
        """Whether an admin asked the job to stop (one small read: called between training steps)."""
        rows = self._graph.read(q.JOB_CANCEL_REQUESTED, job_id=job_id)
        return bool(rows and rows[0]["cancel"])

    # -- locks ----------------------------------------------------------------------------------

    def claim(self, holder: str, name: str = TRAINER_LOCK) -> bool:
        """Claim lock ``name`` for job ``holder``; True when it holds it now (again, if it did).

        Free means: nobody holds it, or the holder's job has ended (or no longer exists).
        """
        self.ensure_schema()
        rows = self._graph.write(q.LOCK_CLAIM, name=name, holder=holder, at=now())
        return bool(rows) and rows[0]["holder"] == holder

    def release(self, holder: str, name: str = TRAINER_LOCK) -> None:
        """Release ``name`` if ``holder`` holds it (a no-op otherwise)."""
        self._graph.write(q.LOCK_RELEASE, name=name, holder=holder)

    def holder(self, name: str = TRAINER_LOCK) -> str | None:
        """The job holding ``name`` now, if any."""
        rows = self._graph.read(q.LOCK_HOLDER, name=name)
        return rows[0]["holder"] if rows else None


__all__ = ["TRAINER_LOCK", "Job", "JobState", "JobStore", "now"]
