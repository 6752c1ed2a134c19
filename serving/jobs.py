"""The job service: what gRPC's JobService, REST's ``/v1/jobs`` and ``kgqa jobs`` share (role admin).

Starting a retrain creates a queued :class:`kg.jobs.Job` and launches a worker process for it
(``python -m kgqa jobs run JOB_ID``): training in a process of its own keeps the server's memory
and threads out of it, and a worker can be killed and started again (``resume``) without touching
the server. Cancelling raises the job's flag; a job whose worker is gone (killed, crashed) is
marked cancelled here at once, which also frees the trainer lock it held.

The retrain logic itself (planning, creating a checked job, approving) is handed in as a
:class:`Retrainer` (``training.retrain.RetrainRunner``, wired in ``kgqa.wiring``): serving does
not import training.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import structlog

from kg.jobs import Job, JobState, JobStore
from kgqa.errors import InvalidArgument, JobStateError
from serving.service import require
from serving.types import Caller, Role

log = structlog.get_logger(__name__)


class Plan(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


class Retrainer(Protocol):
    """The retrain operations the service delegates (``training.retrain.RetrainRunner``)."""

    def plan(self, since: int | None = None) -> Plan: ...

    def create(self, since: int | None, actor: str, params: dict[str, Any] | None = None) -> Job: ...

    def approve(self, job_id: str) -> Job: ...


class WorkerLauncher:
    """Starts ``python -m kgqa jobs run JOB_ID`` as a process of its own, logging to the job folder.

    Args:
        jobs_dir: ``$KGQA_HOME/jobs`` (each worker logs to ``<job id>/worker.log``).
        env: variables the worker needs beyond the server's own environment (the graph's URI,
            ``KGQA_HOME``), so a server built from code hands its settings on.
        command: the worker command before the job id.
    """

    def __init__(
        self, jobs_dir: Path, env: Mapping[str, str] | None = None, command: list[str] | None = None
    ) -> None:
        self.jobs_dir = Path(jobs_dir)
        self.env = dict(env or {})
        self.command = command or [sys.executable, "-m", "kgqa", "jobs", "run"]
        self._procs: dict[str, subprocess.Popen] = {}

    def __call__(self, job_id: str) -> int:
        folder = self.jobs_dir / job_id
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "worker.log").open("ab") as logfile:
            proc = subprocess.Popen(
                [*self.command, job_id],
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal to the server does not reach the training
            )
        self._procs[job_id] = proc
        # reap it when it ends, so no zombie is left behind a long-running server
        threading.Thread(target=proc.wait, name=f"kgqa-job-{job_id}", daemon=True).start()
        log.info("jobs.worker_started", job_id=job_id, pid=proc.pid)
        return proc.pid

    def process(self, job_id: str) -> subprocess.Popen | None:
        """The worker this launcher started for ``job_id`` (tests kill it to check resuming)."""
        return self._procs.get(job_id)


def worker_alive(job: Job) -> bool:
    """Whether the job's worker process still runs (only knowable on its own host)."""
    if job.worker_pid is None or job.worker_host != socket.gethostname():
        return job.worker_pid is not None
    try:
        os.kill(job.worker_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (ended, not yet reaped) is not running
        with open(f"/proc/{job.worker_pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return True


class JobsService:
    """Admin operations on jobs, for every transport.

    Args:
        store: the Job nodes.
        retrainer: plans, creates and approves retrain jobs.
        launch: starts a worker for a job id and returns its pid.
    """

    def __init__(self, store: JobStore, retrainer: Retrainer, launch: Callable[[str], int]) -> None:
        self.store = store
        self.retrainer = retrainer
        self.launch = launch

    def start_retrain(self, caller: Caller, since: int | None = None) -> Job:
        """Create a retrain job and start its worker. ``since`` None: the active model's graph version."""
        require(caller, Role.ADMIN)
        if since is not None and since < 0:
            raise InvalidArgument("since must be a graph version (>= 0)")
        job = self.retrainer.create(since, caller.key_id)
        pid = self.launch(job.job_id)
        log.info("jobs.retrain_started", job_id=job.job_id, actor=caller.key_id, pid=pid)
        return self.store.update(job.job_id, worker_pid=pid, worker_host=socket.gethostname())

    def plan_retrain(self, caller: Caller, since: int | None = None) -> dict[str, Any]:
        """What a retrain would regenerate (a dry run: no job, nothing built)."""
        require(caller, Role.ADMIN)
        return self.retrainer.plan(since).to_dict()

    def get(self, caller: Caller, job_id: str) -> Job:
        require(caller, Role.ADMIN)
        return self.store.get(job_id)

    def list(self, caller: Caller, state: str | None = None, limit: int = 50) -> list[Job]:
        require(caller, Role.ADMIN)
        try:
            wanted = JobState(state) if state else None
        except ValueError:
            raise InvalidArgument(
                f"unknown job state {state!r}; use one of {[s.value for s in JobState]}"
            ) from None
        return self.store.list(state=wanted, limit=max(1, min(limit, 500)))

    def cancel(self, caller: Caller, job_id: str) -> Job:
        """Ask a job to stop; a job without a live worker is cancelled at once.

        Raises:
            JobStateError: the job has already succeeded, failed or been cancelled.
        """
        require(caller, Role.ADMIN)
        job = self.store.get(job_id)
        if job.state.finished and job.state is not JobState.WAITING_APPROVAL:
            raise JobStateError(f"job {job_id} is {job.state.value}; nothing to cancel")
        job = self.store.request_cancel(job_id)
        if job.state is JobState.WAITING_APPROVAL or not worker_alive(job):
            job = self.store.update(job_id, state=JobState.CANCELLED, worker_pid=None)
            self.store.release(job_id)
        log.info("jobs.cancel_requested", job_id=job_id, actor=caller.key_id, state=job.state.value)
        return job

    def resume(self, caller: Caller, job_id: str) -> Job:
        """Start a worker again for a job whose worker is gone; it skips the stages already done.

        Raises:
            JobStateError: the job has ended, or its worker is still running.
        """
        require(caller, Role.ADMIN)
        job = self.store.get(job_id)
        if job.state.finished:
            raise JobStateError(f"job {job_id} is {job.state.value}; nothing to resume")
        if worker_alive(job):
            raise JobStateError(f"job {job_id} still has a worker (pid {job.worker_pid})")
        pid = self.launch(job_id)
        return self.store.update(job_id, worker_pid=pid, worker_host=socket.gethostname())

    def approve(self, caller: Caller, job_id: str) -> Job:
        """Activate the model of a job that waits for approval."""
        require(caller, Role.ADMIN)
        return self.retrainer.approve(job_id)


__all__ = ["JobsService", "Retrainer", "WorkerLauncher", "worker_alive"]
