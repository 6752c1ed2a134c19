"""The console's Jobs pages in a real browser: Debian's chromium (headless, Playwright) against
``start_servers`` on port 0 with the real JobsService over Neo4j, on the tiny model.

The world is the retrain tests' own (``tests/retrain_world.py``): the expense guide
ingested, a tiny adapter trained on it, registered and activated, then the guide changed and
re-ingested. An admin plans a retrain (dry run: the changed and retired clauses, nothing
started), starts one from the page, watches the stage reach ``train`` and the progress bar move
while a real worker process trains, and cancels it with the keyboard: the job ends cancelled and
no model is registered. Readers, auditors and editors are refused every jobs route by the server
(plain HTTP with their own sessions and CSRF tokens). Each test saves screenshots under its tmp
dir and fails on any browser console error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from console_env import (
    ADMIN_KEY,
    AUDITOR_KEY,
    EDITOR_KEY,
    READER_KEY,
    UNLABELLED_JS,
    Tab,
    csrf_of,
    open_tab_at,
    serving,
    sign_in,
)
from retrain_world import write_config

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


@pytest.fixture(scope="module")
def retrain_world(world, neo4j_driver):
    """The retrain world, wiped from the session's graph afterwards: its changed copy of the expense
    guide would otherwise refuse the sample manuals the next console modules ingest."""
    yield world
    with neo4j_driver.session() as s:
        s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()


@pytest.fixture(scope="module")
def jobs_service(retrain_world, tmp_path_factory):
    """The servers' job service; its retrain config trains long enough (500 steps) to be cancelled."""
    world = retrain_world
    from kg.registry import ModelRegistry
    from kgqa.wiring import build_jobs_service

    ModelRegistry(world["driver"]).activate(world["first"].model_id)
    config = write_config(
        tmp_path_factory.mktemp("jobs-config") / "long.yaml",
        world,
        max_steps=500,
        sft={"max_length": 1024, "per_device_train_batch_size": 2},
    )
    settings = world["settings"].model_copy(update={"retrain_config": config})
    return build_jobs_service(settings, world["driver"])


@pytest.fixture(scope="module")
def jobs_url(retrain_world, jobs_service) -> Iterator[str]:
    from kgqa.wiring import build_qa_service

    with serving(
        build_qa_service(retrain_world["settings"], retrain_world["driver"]), jobs=jobs_service
    ) as url:
        yield url


@pytest.fixture
def admin_tab(browser, jobs_url, tmp_path) -> Iterator[Tab]:
    tab = open_tab_at(browser, jobs_url, tmp_path, ADMIN_KEY)
    yield tab
    tab.page.context.close()


def _admin():
    from serving.types import Caller, Role

    return Caller("test-admin", Role.ADMIN)


def _progress(page) -> float | None:
    """The progress bar's value now (None while the page reloads)."""
    try:
        value = page.locator("#job-progress").get_attribute("value", timeout=2000)
    except Exception:  # the page is being replaced (HX-Refresh): read it again
        return None
    return float(value) if value is not None else None


def test_admin_plans_starts_watches_and_cancels_a_retrain(admin_tab, retrain_world, jobs_service):
    world = retrain_world
    from playwright.sync_api import expect

    from kg.jobs import JobState, JobStore
    from kg.registry import ModelRegistry
    from serving.auth import key_id

    page = admin_tab.page
    models_before = {m.model_id for m in ModelRegistry(world["driver"]).list()}
    jobs_before = len(jobs_service.list(_admin()))
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Jobs").click()
    page.wait_for_url("**/console/jobs")
    assert page.evaluate(UNLABELLED_JS) == []

    # the dry run: the plan names the changed and retired clauses; no job is started
    page.get_by_label("Dry run: show the plan, start nothing").check()
    page.get_by_role("button", name="Start retrain").click()
    plan = page.locator("#plan")
    expect(plan).to_contain_text(world["changed"])
    expect(plan).to_contain_text(world["removed"])
    expect(plan).to_contain_text(world["first"].model_id)
    admin_tab.shot("plan")
    assert len(jobs_service.list(_admin())) == jobs_before

    # the real start: the job page, polled while a worker process runs it
    page.get_by_label("Dry run: show the plan, start nothing").uncheck()
    page.get_by_role("button", name="Start retrain").click()
    page.wait_for_url("**/console/jobs/retrain-*")
    job_id = page.url.rsplit("/", 1)[-1]
    first = _progress(page)
    assert first is not None and first < 0.2
    expect(page.locator("#job-stage")).to_have_text("train", timeout=240_000)
    deadline = time.monotonic() + 120
    while (value := _progress(page)) is None or value <= first:
        assert time.monotonic() < deadline, f"the progress bar stayed at {first}"
        time.sleep(0.5)
    assert page.get_by_label("Progress").count() == 1  # the bar is labelled
    expect(page.locator("#job-history")).to_contain_text("dataset: finished")
    admin_tab.shot("running")

    # cancel with the keyboard
    cancel = page.get_by_role("button", name="Cancel job")
    cancel.focus()
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#job-state")).to_have_text("cancelled", timeout=120_000)
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    assert page.locator("#job-status").get_attribute("hx-trigger") is None  # polling has stopped
    admin_tab.shot("cancelled")

    job = jobs_service.get(_admin(), job_id)
    assert job.state is JobState.CANCELLED and job.cancel_requested and "train" not in job.stages_done
    assert job.actor == key_id(ADMIN_KEY)  # the admin who clicked, not the server
    assert {m.model_id for m in ModelRegistry(world["driver"]).list()} == models_before
    assert JobStore(world["driver"]).holder() is None

    page.get_by_role("link", name="Jobs", exact=True).first.click()
    row = page.locator("#jobs tr", has=page.get_by_role("link", name=job_id))
    expect(row).to_contain_text("cancelled")
    assert admin_tab.errors == []


@pytest.mark.parametrize("key", [READER_KEY, AUDITOR_KEY, EDITOR_KEY])
def test_non_admins_are_refused_every_jobs_route(jobs_url, jobs_service, retrain_world, key):
    world = retrain_world
    from kg.jobs import JobState, JobStore
    from serving.auth import key_id

    store = JobStore(world["driver"])
    job = store.create("retrain", params={}, since_graph_version=0, actor="test")
    store.update(job.job_id, state=JobState.CANCELLED)
    with httpx.Client(base_url=jobs_url, follow_redirects=True) as client:
        assert sign_in(client, key).status_code == 200
        csrf = csrf_of(client.get("/console/ask").text)
        refused = [
            client.get("/console/jobs"),
            client.get(f"/console/jobs/{job.job_id}"),
            client.get(f"/console/jobs/{job.job_id}/status"),
            client.post("/console/jobs/start", data={"csrf_token": csrf, "dry_run": "true"}),
            client.post("/console/jobs/start", data={"csrf_token": csrf}),
            client.post(f"/console/jobs/{job.job_id}/cancel", data={"csrf_token": csrf}),
            client.post(f"/console/jobs/{job.job_id}/approve", data={"csrf_token": csrf}),
        ]
        assert [r.status_code for r in refused] == [403] * len(refused)
        assert 'href="/console/jobs"' not in client.get("/console/ask").text  # no nav entry either
    assert store.get(job.job_id).state is JobState.CANCELLED
    assert all(j.actor != key_id(key) for j in jobs_service.list(_admin()))


def test_a_bad_since_version_is_said_on_the_form_and_starts_nothing(jobs_url, jobs_service):
    before = len(jobs_service.list(_admin()))
    with httpx.Client(base_url=jobs_url, follow_redirects=True) as client:
        assert sign_in(client, ADMIN_KEY).status_code == 200
        csrf = csrf_of(client.get("/console/jobs").text)
        for since in ("-1", "seven"):
            answer = client.post("/console/jobs/start", data={"csrf_token": csrf, "since": since})
            assert (
                answer.status_code == 422 and 'role="alert"' in answer.text and "since must be" in answer.text
            )
            assert f'value="{since}"' in answer.text  # the form keeps what was typed
        stale = client.post("/console/jobs/start", data={"csrf_token": "not-the-token"})
        assert stale.status_code == 403
    assert len(jobs_service.list(_admin())) == before


def test_admin_approves_a_job_the_gate_held_back(jobs_url, jobs_service, retrain_world):
    """A job waiting for approval (its model registered, the gate failed) shows the gate's failure
    and Approve; approving through the page activates its model and ends the job succeeded."""
    from kg.jobs import JobState, JobStore
    from kg.registry import ModelRegistry

    world = retrain_world
    registry = ModelRegistry(world["driver"])
    model_id = world["first"].model_id
    store = JobStore(world["driver"])
    job = store.create("retrain", params={}, since_graph_version=0, actor="test")
    failure = {
        "set": "old_paraphrase",
        "metric": "token_f1",
        "parent": 0.5,
        "new": 0.3,
        "loss": 0.2,
        "ok": False,
        "difference": {"n": 8, "delta": -0.2, "low": -0.45, "high": 0.05, "significant": False},
    }
    result = {
        "register": {"model_id": model_id},
        "evaluate": {"gate": {"passed": False, "margin": 0.05, "checks": [failure], "failures": [failure]}},
        "activate": {"activated": None, "reason": "the regression gate failed"},
    }
    store.update(job.job_id, state=JobState.WAITING_APPROVAL, stage="activate", progress=1.0, result=result)
    registry.deactivate()
    try:
        with httpx.Client(base_url=jobs_url, follow_redirects=True) as client:
            assert sign_in(client, ADMIN_KEY).status_code == 200
            page = client.get(f"/console/jobs/{job.job_id}")
            assert page.status_code == 200
            assert "failed: old_paraphrase token_f1 lost 0.2" in page.text and model_id in page.text
            # the admin sees whether the loss could be the noise of a few questions
            assert "95% interval -0.450 to 0.050 over 8 questions: may be noise" in page.text
            assert "Approve" in page.text and 'hx-trigger="every 1s"' not in page.text  # nothing to poll
            done = client.post(f"/console/jobs/{job.job_id}/approve", data={"csrf_token": csrf_of(page.text)})
            assert done.status_code == 200 and 'id="job-state">succeeded' in done.text
            assert "Approve" not in done.text and "Cancel job" not in done.text
    finally:
        registry.activate(model_id)
    assert store.get(job.job_id).state is JobState.SUCCEEDED
    assert registry.active().model_id == model_id
