"""The gRPC server over real sockets, a real QAService and a real Neo4j with ingested corpus files."""

from __future__ import annotations

import json
import re
import threading
import time

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from serving_data import (
    AUDITOR_KEY,
    BROKEN_INDEX_MESSAGE,
    PHONE,
    QUESTION,
    QUESTION_WITH_PII,
    READER_KEY,
    RESIDENT_ID,
    corpus_letter,
)

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def channel(servers):
    with grpc.insecure_channel(f"127.0.0.1:{servers.grpc_port}") as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture(scope="module")
def stub(channel):
    from serving.grpc import qa_pb2_grpc

    return qa_pb2_grpc.QAServiceStub(channel)


def _auth(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


@pytest.fixture(scope="module")
def asked(stub):
    """One verified answer over gRPC, shared by the audit tests."""
    from serving.grpc import qa_pb2

    return stub.Ask(qa_pb2.AskRequest(question=QUESTION, k=5), metadata=_auth(READER_KEY), timeout=30)


def test_ask_returns_verified_answer_with_exact_quotes(asked, stub):
    from serving.grpc import qa_pb2

    assert asked.status == qa_pb2.VERIFIED
    assert asked.answer_id and asked.question == QUESTION and asked.graph_version > 0
    assert asked.citations, "a verified answer cites at least one clause"
    for c in asked.citations:
        clause = stub.GetClause(
            qa_pb2.GetClauseRequest(clause_id=c.clause_id, version=c.clause_version),
            metadata=_auth(READER_KEY),
        )
        assert clause.text[c.quote_start : c.quote_end] == c.quote and c.quote
        assert c.verified and c.document_title and c.clause_number
    assert any("成本" in c.quote for c in asked.citations)


def test_ask_stream_sends_deltas_then_final(stub):
    from serving.grpc import qa_pb2

    events = list(
        stub.AskStream(qa_pb2.AskRequest(question=QUESTION), metadata=_auth(READER_KEY), timeout=30)
    )
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[-1] == "final" and kinds.count("final") == 1 and kinds[0] == "delta"
    final = events[-1].final
    assert "".join(e.delta for e in events[:-1]) == final.text
    assert final.status == qa_pb2.VERIFIED and final.citations


def test_get_answer_needs_auditor_and_returns_the_trace(asked, stub):
    from serving.grpc import qa_pb2

    request = qa_pb2.GetAnswerRequest(answer_id=asked.answer_id)
    with pytest.raises(grpc.RpcError) as denied:
        stub.GetAnswer(request, metadata=_auth(READER_KEY))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "auditor" in denied.value.details()
    record = stub.GetAnswer(request, metadata=_auth(AUDITOR_KEY))
    assert record.answer.answer_id == asked.answer_id and record.answer.text == asked.text
    assert record.answer.status == asked.status
    assert [(c.clause_id, c.clause_version, c.quote) for c in record.answer.citations] == [
        (c.clause_id, c.clause_version, c.quote) for c in asked.citations
    ]
    assert record.actor.startswith("key-") and READER_KEY not in record.actor
    assert len(record.record_hash) == 64 and record.seq >= 1


def test_get_clause_any_version_and_unknown_clause(asked, stub):
    from serving.grpc import qa_pb2

    cited = asked.citations[0]
    active = stub.GetClause(qa_pb2.GetClauseRequest(clause_id=cited.clause_id), metadata=_auth(READER_KEY))
    assert active.clause_id == cited.clause_id and active.status == "active"
    assert active.document_id == cited.document_id and active.history
    v1 = stub.GetClause(
        qa_pb2.GetClauseRequest(clause_id=cited.clause_id, version=1), metadata=_auth(READER_KEY)
    )
    assert v1.version == 1
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetClause(qa_pb2.GetClauseRequest(clause_id="NOPE/第九百条"), metadata=_auth(READER_KEY))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_answers_citing_clause_lists_the_answer(asked, stub):
    from serving.grpc import qa_pb2

    cited = asked.citations[0]
    request = qa_pb2.ListAnswersCitingClauseRequest(clause_id=cited.clause_id)
    response = stub.ListAnswersCitingClause(request, metadata=_auth(AUDITOR_KEY))
    mine = [a for a in response.answers if a.answer_id == asked.answer_id]
    assert mine and mine[0].quote == cited.quote and mine[0].clause_version == cited.clause_version
    assert mine[0].status == qa_pb2.VERIFIED
    with pytest.raises(grpc.RpcError) as denied:
        stub.ListAnswersCitingClause(request, metadata=_auth(READER_KEY))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ([], grpc.StatusCode.UNAUTHENTICATED),
        ([("authorization", "Bearer not-a-key")], grpc.StatusCode.UNAUTHENTICATED),
        ([("authorization", READER_KEY)], grpc.StatusCode.UNAUTHENTICATED),  # no Bearer scheme
    ],
)
def test_missing_or_bad_key_is_unauthenticated(stub, metadata, code):
    from serving.grpc import qa_pb2

    with pytest.raises(grpc.RpcError) as err:
        stub.Ask(qa_pb2.AskRequest(question=QUESTION), metadata=metadata)
    assert err.value.code() == code
    assert "not-a-key" not in err.value.details()


@pytest.mark.parametrize(("question", "needle"), [("", "empty"), ("  ", "empty"), ("问" * 5000, "limit")])
def test_invalid_questions_are_invalid_argument(stub, question, needle):
    from serving.grpc import qa_pb2

    with pytest.raises(grpc.RpcError) as err:
        stub.Ask(qa_pb2.AskRequest(question=question), metadata=_auth(READER_KEY))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in err.value.details()
    with pytest.raises(grpc.RpcError) as streamed:
        list(stub.AskStream(qa_pb2.AskRequest(question=question), metadata=_auth(READER_KEY)))
    assert streamed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_bad_k_is_invalid_argument(stub):
    from serving.grpc import qa_pb2

    with pytest.raises(grpc.RpcError) as err:
        stub.Ask(qa_pb2.AskRequest(question=QUESTION, k=-1), metadata=_auth(READER_KEY))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_tiny_deadline_is_deadline_exceeded_and_server_stays_up(stub):
    from serving.grpc import qa_pb2

    with pytest.raises(grpc.RpcError) as err:
        stub.Ask(qa_pb2.AskRequest(question=QUESTION), metadata=_auth(READER_KEY), timeout=0.001)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    again = stub.Ask(qa_pb2.AskRequest(question=QUESTION), metadata=_auth(READER_KEY), timeout=30)
    assert again.status == qa_pb2.VERIFIED


def test_health_is_serving_without_a_key(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "kgqa.v1.QAService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_is_not_serving_when_neo4j_is_down(keyring, tmp_path):
    from neo4j import GraphDatabase

    from kgqa.settings import Settings
    from kgqa.wiring import build_qa_service
    from serving.grpc import qa_pb2, qa_pb2_grpc
    from serving.grpc.server import build_grpc_server

    dead = "bolt://127.0.0.1:9"  # discard port: nothing listens
    with GraphDatabase.driver(dead) as driver:
        service = build_qa_service(Settings(neo4j_uri=dead, home=tmp_path, request_deadline_s=1.0), driver)
        server = build_grpc_server(service, keyring, port=0)
        server.start()
        try:
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
                check = health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service="kgqa.v1.QAService"), timeout=5
                )
                assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
                with pytest.raises(grpc.RpcError) as err:
                    qa_pb2_grpc.QAServiceStub(ch).Ask(
                        qa_pb2.AskRequest(question=QUESTION), metadata=_auth(READER_KEY), timeout=30
                    )
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "Neo4j" in err.value.details() and "127.0.0.1" not in err.value.details()
        finally:
            server.stop(0).wait(5)
            service.breaker.stop()


def test_reflection_lists_the_service(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {"kgqa.v1.QAService", "grpc.health.v1.Health"} <= services
    methods = {m.name for m in DescriptorPool(database).FindServiceByName("kgqa.v1.QAService").methods}
    assert methods == {"Ask", "AskStream", "GetAnswer", "GetClause", "ListAnswersCitingClause"}


def test_metrics_count_grpc_calls(servers, asked, stub):
    import httpx

    text = httpx.get(f"http://127.0.0.1:{servers.http_port}/metrics", timeout=10).text
    assert 'kgqa_requests_total{method="unary",route="Ask",status="OK",transport="grpc"}' in text
    assert 'route="GetAnswer",status="PERMISSION_DENIED",transport="grpc"' in text
    assert 'kgqa_answers_total{status="VERIFIED",transport="grpc"}' in text
    assert 'kgqa_ask_duration_seconds_count{transport="grpc"}' in text


def test_excess_concurrent_calls_get_resource_exhausted(qa_service, keyring):
    """With room for one call, a second is refused at once while an open stream holds the slot."""
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    from serving.grpc.server import build_grpc_server

    server = build_grpc_server(qa_service, keyring, port=0, max_workers=4, max_concurrent_rpcs=1)
    server.start()
    release = threading.Event()

    def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")
        release.wait(10)

    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            holder = reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(requests())
            assert next(holder).list_services_response.service
            health = health_pb2_grpc.HealthStub(ch)
            with pytest.raises(grpc.RpcError) as err:
                health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            release.set()
            list(holder)
            check = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        release.set()
        server.stop(0).wait(5)


class _SlowService:
    """The real service, with Ask held for a moment so a call is surely in flight at stop()."""

    def __init__(self, inner, delay_s: float) -> None:
        self._inner = inner
        self._delay = delay_s
        self.entered = threading.Semaphore(0)

    def ask(self, *args, **kwargs):
        self.entered.release()
        time.sleep(self._delay)
        return self._inner.ask(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


def test_graceful_stop_lets_calls_in_flight_finish_then_refuses(qa_service, keyring):
    import httpx

    from serving.grpc import qa_pb2, qa_pb2_grpc
    from serving.server import start_servers

    slow = _SlowService(qa_service, delay_s=1.0)
    running = start_servers(slow, keyring, grpc_port=0, http_port=0, grace=5.0)
    target, base = f"127.0.0.1:{running.grpc_port}", f"http://127.0.0.1:{running.http_port}"
    outcomes: dict[str, object] = {}

    def grpc_call() -> None:
        with grpc.insecure_channel(target) as ch:
            request = qa_pb2.AskRequest(question=QUESTION)
            try:
                answer = qa_pb2_grpc.QAServiceStub(ch).Ask(request, metadata=_auth(READER_KEY), timeout=30)
                outcomes["grpc"] = qa_pb2.AnswerStatus.Name(answer.status)
            except grpc.RpcError as exc:
                outcomes["grpc"] = exc.code()

    def http_call() -> None:
        response = httpx.post(
            f"{base}/v1/ask", json={"question": QUESTION}, headers={"Authorization": f"Bearer {READER_KEY}"}
        )
        outcomes["http"] = (response.status_code, response.json().get("status"))

    calls = [threading.Thread(target=grpc_call), threading.Thread(target=http_call)]
    for t in calls:
        t.start()
    assert slow.entered.acquire(timeout=30) and slow.entered.acquire(timeout=30)  # both in Ask now
    started = time.monotonic()
    running.stop()
    waited = time.monotonic() - started
    for t in calls:
        t.join(10)
    assert outcomes == {"grpc": "VERIFIED", "http": (200, "VERIFIED")}
    assert 0.5 < waited < 5.0  # it waited for the calls in flight, not for the whole grace
    assert not running.http_thread.is_alive()
    with grpc.insecure_channel(target) as ch, pytest.raises(grpc.RpcError) as err:
        qa_pb2_grpc.QAServiceStub(ch).Ask(
            qa_pb2.AskRequest(question=QUESTION), metadata=_auth(READER_KEY), timeout=2
        )
    assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/healthz", timeout=2)


def test_an_internal_error_returns_an_incident_logged_once_without_secrets(stub, broken_phrase_index, logs):
    from serving.grpc import qa_pb2
    from serving.grpc.interceptors import INCIDENT_METADATA

    capture = logs(json_logs=True)
    with pytest.raises(grpc.RpcError) as err:
        stub.Ask(qa_pb2.AskRequest(question=QUESTION_WITH_PII), metadata=_auth(AUDITOR_KEY), timeout=60)
    assert err.value.code() == grpc.StatusCode.INTERNAL
    trailing = dict(err.value.trailing_metadata() or ())
    incident = trailing[INCIDENT_METADATA]
    assert re.fullmatch(r"[0-9a-f]{12}", incident) and incident in err.value.details()
    assert BROKEN_INDEX_MESSAGE not in err.value.details()
    err_text = capture.readouterr().err
    records = [json.loads(line) for line in err_text.splitlines() if line.startswith("{")]
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1, errors
    (record,) = errors
    assert record["event"] == "grpc.internal_error" and record["incident"] == incident
    assert record["exception"][-1]["exc_type"] and record["exception"][-1]["frames"]
    assert all("locals" not in f for exc in record["exception"] for f in exc["frames"])
    for leak in (AUDITOR_KEY, READER_KEY, PHONE, RESIDENT_ID):
        assert leak not in err_text, leak
    assert len(json.dumps(record)) < 20_000


def test_a_letter_near_the_limit_is_answered(stub, corpus_dir):
    from serving.grpc import qa_pb2

    for length in (1990, 2000):
        answer = stub.Ask(
            qa_pb2.AskRequest(question=corpus_letter(corpus_dir, length)),
            metadata=_auth(READER_KEY),
            timeout=120,
        )
        assert answer.text and answer.answer_id
    with pytest.raises(grpc.RpcError) as err:
        stub.Ask(qa_pb2.AskRequest(question=corpus_letter(corpus_dir, 2001)), metadata=_auth(READER_KEY))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "question is 2001 characters; the limit is 2000"


def test_a_megabyte_message_is_refused(stub):
    from serving.grpc import qa_pb2

    with pytest.raises(grpc.RpcError) as err:
        stub.Ask(qa_pb2.AskRequest(question="存货" * 200_000), metadata=_auth(READER_KEY), timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
