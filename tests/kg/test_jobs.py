"""Job nodes and the single-trainer lock against the real Neo4j."""

from __future__ import annotations

import threading

import pytest

from kg.jobs import TRAINER_LOCK, JobState, JobStore
from kgqa.errors import NotFound

pytestmark = pytest.mark.neo4j


@pytest.fixture
def store(clean_graph) -> JobStore:
    return JobStore(clean_graph)


def test_job_round_trip_update_and_history(store):
    job = store.create("retrain", params={"since": 3, "dry_run": False}, since_graph_version=3, actor="key-x")
    assert job.state is JobState.QUEUED and job.job_id.startswith("retrain-") and job.stages_done == []
    store.update(job.job_id, state=JobState.RUNNING, stage="delta", progress=0.1, result={"pairs": 4})
    job = store.record(store.get(job.job_id), "delta", "finished", pid=123)
    got = store.get(job.job_id)
    assert got.state is JobState.RUNNING and got.stage == "delta" and got.progress == pytest.approx(0.1)
    assert got.params == {"since": 3, "dry_run": False} and got.result == {"pairs": 4}
    assert [h["event"] for h in got.history] == ["finished"] and got.history[0]["pid"] == 123
    assert [j.job_id for j in store.list()] == [job.job_id]
    assert store.list(state=JobState.SUCCEEDED) == []
    with pytest.raises(NotFound):
        store.get("retrain-nope")


def test_cancel_flag(store):
    job = store.create("retrain", params={}, since_graph_version=None, actor="a")
    assert not store.cancel_requested(job.job_id)
    assert store.request_cancel(job.job_id).cancel_requested
    assert store.cancel_requested(job.job_id)


def test_trainer_lock_is_exclusive_and_freed_when_the_holder_ends(store):
    a = store.create("retrain", params={}, since_graph_version=None, actor="a")
    b = store.create("retrain", params={}, since_graph_version=None, actor="b")
    store.update(a.job_id, state=JobState.RUNNING)
    assert store.claim(a.job_id)
    assert store.claim(a.job_id)  # re-claiming (a resumed worker) keeps it
    assert not store.claim(b.job_id)
    assert store.holder() == a.job_id
    store.release(b.job_id)  # not the holder: no effect
    assert store.holder() == a.job_id
    store.update(a.job_id, state=JobState.FAILED)  # a crashed and cancelled holder does not block
    assert store.claim(b.job_id) and store.holder(TRAINER_LOCK) == b.job_id
    store.release(b.job_id)
    assert store.holder() is None


def test_concurrent_claims_give_the_lock_to_exactly_one(store):
    jobs = [store.create("retrain", params={}, since_graph_version=None, actor=str(i)) for i in range(8)]
    for job in jobs:
        store.update(job.job_id, state=JobState.RUNNING)
    barrier = threading.Barrier(len(jobs))
    won: list[str] = []

    def claim(job_id: str) -> None:
        barrier.wait()
        if store.claim(job_id):
            won.append(job_id)

    threads = [threading.Thread(target=claim, args=(j.job_id,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and store.holder() == won[0]
