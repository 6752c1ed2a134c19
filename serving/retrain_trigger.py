"""Retraining triggered by graph changes, debounced: after N changed clauses or T minutes.

Off by default (``KGQA_RETRAIN_TRIGGER_CHANGES`` and ``KGQA_RETRAIN_TRIGGER_MINUTES`` unset). When
on, a background thread of the server polls the change log: once the clauses changed since the
active model's graph version reach ``after_changes``, or ``after_minutes`` have passed since the
first such change was seen (so a burst of edits settles into one job), it starts a retrain job
through :class:`serving.jobs.JobsService` as the ``system:retrain-trigger`` admin. It never starts
one while another retrain job is queued, running or waiting for approval, nor twice for the same
graph version.
"""

from __future__ import annotations

import threading
import time

import neo4j
import structlog

from kg.delta import read_delta
from kg.jobs import JobState
from kg.registry import ModelRegistry
from kgqa.errors import KgqaError
from serving.jobs import JobsService
from serving.types import Caller, Role

log = structlog.get_logger(__name__)

TRIGGER_CALLER = Caller("system:retrain-trigger", Role.ADMIN)


class RetrainTrigger:
    """Polls the change log and starts debounced retrain jobs.

    Args:
        jobs: the job service that starts them.
        driver: the graph.
        after_changes: start once this many clauses changed (None: no count threshold).
        after_minutes: start this long after the first pending change was seen (None: no timer).
        poll_s: seconds between polls.
        database: the Neo4j database.
    """

    def __init__(
        self,
        jobs: JobsService,
        driver: neo4j.Driver,
        *,
        after_changes: int | None,
        after_minutes: float | None,
        poll_s: float = 30.0,
        database: str | None = None,
    ) -> None:
        self.jobs = jobs
        self.driver = driver
        self.database = database
        self.after_changes = after_changes
        self.after_minutes = after_minutes
        self.poll_s = poll_s
        self._registry = ModelRegistry(driver, database)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._first_seen: float | None = None
        self._last_version: int | None = None

    def check(self) -> str | None:
        """One poll; returns the id of the job it started, if it started one."""
        active = self._registry.active()
        if active is None or active.graph_version is None or not active.adapter_path:
            return None
        busy = (JobState.QUEUED, JobState.RUNNING, JobState.WAITING_APPROVAL)
        # by state, not among the newest few: an old job still waiting for approval counts too
        if any(j.kind == "retrain" for state in busy for j in self.jobs.store.list(state=state, limit=10)):
            return None
        delta = read_delta(self.driver, int(active.graph_version), self.database)
        if delta.empty or delta.graph_version == self._last_version:
            self._first_seen = None
            return None
        now = time.monotonic()
        self._first_seen = self._first_seen or now
        due_count = self.after_changes is not None and len(delta.clauses) >= self.after_changes
        due_time = self.after_minutes is not None and now - self._first_seen >= self.after_minutes * 60
        if not (due_count or due_time):
            return None
        job = self.jobs.start_retrain(TRIGGER_CALLER)
        self._last_version, self._first_seen = delta.graph_version, None
        log.info(
            "retrain.triggered",
            job_id=job.job_id,
            clauses=len(delta.clauses),
            by="count" if due_count else "time",
        )
        return job.job_id

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.check()
            except KgqaError as exc:  # the graph is down, no model yet: try again at the next poll
                log.warning("retrain.trigger_failed", error=str(exc))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kgqa-retrain-trigger", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = ["TRIGGER_CALLER", "RetrainTrigger"]
