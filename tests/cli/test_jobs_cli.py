"""`kgqa jobs list/show/cancel/approve` as a script runs them, on jobs stored in the test Neo4j.

The jobs are made with the store directly (no worker runs): what is checked is the command line's
part — the JSON it prints, its exit codes, and the service's refusals reaching the user as a
clear message.
"""

from __future__ import annotations

import json

import pytest
from cli_run import kgqa, kgqa_json

pytestmark = pytest.mark.neo4j


def test_list_show_cancel_and_approve_from_the_command_line(clean_graph, kgqa_env):
    from kg.jobs import JobState, JobStore

    store = JobStore(clean_graph)
    queued = store.create("retrain", params={"dry_run": False}, since_graph_version=3, actor="key-test")
    waiting = store.create("retrain", params={}, since_graph_version=3, actor="key-test")
    store.update(waiting.job_id, state=JobState.FAILED, stage="gate")

    listed = kgqa_json(["jobs", "list"], kgqa_env)
    assert {j["job_id"] for j in listed} == {queued.job_id, waiting.job_id}
    assert [j["job_id"] for j in kgqa_json(["jobs", "list", "--state", "failed"], kgqa_env)] == [
        waiting.job_id
    ]
    shown = kgqa_json(["jobs", "show", queued.job_id], kgqa_env)
    assert (shown["state"], shown["since_graph_version"]) == ("queued", 3)

    # no worker holds the queued job: cancelling it is immediate, and the exit code says cancelled
    cancelled = kgqa(["jobs", "cancel", queued.job_id, "--json"], kgqa_env)
    assert json.loads(cancelled.stdout)["state"] == "cancelled"
    assert store.get(queued.job_id).state is JobState.CANCELLED

    # approving a job that does not wait for approval is refused with the reason, not a traceback
    refused = kgqa(["jobs", "approve", waiting.job_id], kgqa_env)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert waiting.job_id in refused.stderr + refused.stdout and "approval" in refused.stderr + refused.stdout
    missing = kgqa(["jobs", "show", "retrain-000000000000"], kgqa_env)
    assert missing.returncode != 0 and "no job" in missing.stderr + missing.stdout
