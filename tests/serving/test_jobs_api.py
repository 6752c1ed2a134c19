"""Retrain jobs over real sockets: REST /v1/jobs and gRPC JobService, admin only.

A job run end to end by a worker is tested in tests/training/test_retrain.py; here the transports:
who may call, the error codes, and that both faces show the same Job nodes.
"""

from __future__ import annotations

import grpc
import httpx
import pytest
from serving_data import READER_KEY

pytestmark = pytest.mark.neo4j

ADMIN_KEY = "admin-test-key-0123456789"
EDITOR_KEY = "editor-test-key-0123456789"


@pytest.fixture(scope="module")
def job_servers(qa_service, neo4j_server, neo4j_driver, serving_home):
    from kg.registry import ModelRegistry
    from kgqa.settings import Settings
    from kgqa.wiring import build_jobs_service
    from serving.auth import KeyRing
    from serving.server import start_servers
    from serving.types import Role

    registry = ModelRegistry(neo4j_driver)
    active = registry.active()
    registry.deactivate()  # no model to continue: StartRetrain must refuse with a precondition error
    keyring = KeyRing(
        [(READER_KEY, Role.READER), (EDITOR_KEY, Role.EDITOR), (ADMIN_KEY, Role.ADMIN)], source="tests"
    )
    jobs = build_jobs_service(Settings(neo4j_uri=neo4j_server.bolt_uri, home=serving_home), neo4j_driver)
    running = start_servers(
        qa_service,
        keyring,
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        grace=1.0,
        health_interval_s=0.5,
        jobs=jobs,
    )
    yield running, jobs
    running.stop(grace=1.0)
    if active is not None:
        registry.activate(active.model_id)


@pytest.fixture(scope="module")
def client(job_servers):
    with httpx.Client(base_url=f"http://127.0.0.1:{job_servers[0].http_port}", timeout=30) as c:
        yield c


@pytest.fixture(scope="module")
def stub(job_servers):
    from serving.grpc.gen.kgqa.v1 import jobs_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{job_servers[0].grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        yield jobs_pb2_grpc.JobServiceStub(channel)


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _md(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def _queued_job(job_servers):
    """A queued job without a worker (as after a crash before its worker started)."""
    return job_servers[1].store.create("retrain", params={}, since_graph_version=0, actor="test")


def test_rest_is_admin_only(client):
    assert client.get("/v1/jobs").status_code == 401
    for key in (READER_KEY, EDITOR_KEY):
        for method, path in (
            ("GET", "/v1/jobs"),
            ("POST", "/v1/jobs/retrain"),
            ("GET", "/v1/jobs/x"),
            ("POST", "/v1/jobs/x/cancel"),
        ):
            response = client.request(method, path, headers=_h(key), json={} if method == "POST" else None)
            assert response.status_code == 403, (key, path, response.text)
            assert response.json()["error"]["code"] == "PERMISSION_DENIED"


def test_grpc_is_admin_only(stub):
    from serving.grpc.gen.kgqa.v1 import jobs_pb2

    calls = (
        (stub.ListJobs, jobs_pb2.ListJobsRequest()),
        (stub.StartRetrain, jobs_pb2.StartRetrainRequest()),
        (stub.GetJob, jobs_pb2.GetJobRequest(job_id="x")),
        (stub.CancelJob, jobs_pb2.CancelJobRequest(job_id="x")),
    )
    for call, request in calls:
        with pytest.raises(grpc.RpcError) as info:
            call(request, metadata=_md(READER_KEY), timeout=10)
        assert info.value.code() is grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as info:
            call(request, timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_start_without_an_active_model_is_a_failed_precondition(client, stub):
    from serving.grpc.gen.kgqa.v1 import jobs_pb2

    response = client.post("/v1/jobs/retrain", headers=_h(ADMIN_KEY), json={})
    assert response.status_code == 409 and "no active model" in response.json()["error"]["message"]
    with pytest.raises(grpc.RpcError) as info:
        stub.StartRetrain(jobs_pb2.StartRetrainRequest(), metadata=_md(ADMIN_KEY), timeout=10)
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    response = client.post("/v1/jobs/retrain", headers=_h(ADMIN_KEY), json={"dry_run": True})
    assert response.status_code == 409


def test_admin_lists_gets_and_cancels_over_both_transports(client, stub, job_servers):
    from serving.grpc.gen.kgqa.v1 import jobs_pb2

    rest_job, grpc_job = _queued_job(job_servers), _queued_job(job_servers)
    listed = client.get("/v1/jobs", headers=_h(ADMIN_KEY)).json()["jobs"]
    assert {rest_job.job_id, grpc_job.job_id} <= {j["job_id"] for j in listed}
    got = stub.GetJob(jobs_pb2.GetJobRequest(job_id=rest_job.job_id), metadata=_md(ADMIN_KEY), timeout=10)
    assert got.state == "queued" and got.kind == "retrain"
    assert client.get("/v1/jobs/retrain-nope", headers=_h(ADMIN_KEY)).status_code == 404
    with pytest.raises(grpc.RpcError) as info:
        stub.GetJob(jobs_pb2.GetJobRequest(job_id="retrain-nope"), metadata=_md(ADMIN_KEY), timeout=10)
    assert info.value.code() is grpc.StatusCode.NOT_FOUND

    cancelled = client.post(f"/v1/jobs/{rest_job.job_id}/cancel", headers=_h(ADMIN_KEY)).json()
    assert cancelled["state"] == "cancelled" and cancelled["cancel_requested"]  # no worker: at once
    again = client.post(f"/v1/jobs/{rest_job.job_id}/cancel", headers=_h(ADMIN_KEY))
    assert again.status_code == 409 and again.json()["error"]["code"] == "FAILED_PRECONDITION"
    reply = stub.CancelJob(
        jobs_pb2.CancelJobRequest(job_id=grpc_job.job_id), metadata=_md(ADMIN_KEY), timeout=10
    )
    assert reply.state == "cancelled"
    states = stub.ListJobs(jobs_pb2.ListJobsRequest(state="cancelled"), metadata=_md(ADMIN_KEY), timeout=10)
    assert {rest_job.job_id, grpc_job.job_id} <= {j.job_id for j in states.jobs}
    with pytest.raises(grpc.RpcError) as info:
        stub.ListJobs(jobs_pb2.ListJobsRequest(state="bogus"), metadata=_md(ADMIN_KEY), timeout=10)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_reflection_lists_the_job_service(job_servers):
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(f"127.0.0.1:{job_servers[0].grpc_port}") as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert "kgqa.v1.JobService" in services
