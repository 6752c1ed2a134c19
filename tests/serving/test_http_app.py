"""The REST app over real sockets (uvicorn), the real QAService and a real Neo4j with corpus files."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest
from serving_data import AUDITOR_KEY, QUESTION, READER_KEY

pytestmark = pytest.mark.neo4j


@pytest.fixture(scope="module")
def client(servers):
    with httpx.Client(base_url=f"http://127.0.0.1:{servers.http_port}", timeout=30) as c:
        yield c


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _path(clause_id: str) -> str:
    return quote(clause_id, safe="/")


@pytest.fixture(scope="module")
def asked(client) -> dict:
    response = client.post("/v1/ask", json={"question": QUESTION, "k": 5}, headers=_auth(READER_KEY))
    assert response.status_code == 200, response.text
    return response.json()


def test_ask_returns_verified_answer_with_exact_quotes(asked, client):
    assert asked["status"] == "VERIFIED" and asked["question"] == QUESTION
    assert set(asked) >= {"answer_id", "text", "citations", "unsupported", "model_id", "graph_version"}
    assert asked["citations"]
    for c in asked["citations"]:
        clause = client.get(
            f"/v1/clauses/{_path(c['clause_id'])}",
            params={"version": c["clause_version"]},
            headers=_auth(READER_KEY),
        ).json()
        assert clause["text"][c["quote_start"] : c["quote_end"]] == c["quote"] != ""
        assert clause["clause_id"] == c["clause_id"] and clause["version"] == c["clause_version"]


def test_ask_stream_is_server_sent_events(client):
    with client.stream(
        "POST", "/v1/ask", json={"question": QUESTION, "stream": True}, headers=_auth(READER_KEY)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events, name = [], None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[len("data: ") :])))
    names = [n for n, _ in events]
    assert names[0] == "delta" and names[-1] == "final" and names.count("final") == 1
    final = events[-1][1]["final"]
    assert "".join(d["delta"] for n, d in events if n == "delta") == final["text"]
    assert final["status"] == "VERIFIED" and final["citations"]


def test_stream_validation_errors_are_plain_422(client):
    response = client.post("/v1/ask", json={"question": "", "stream": True}, headers=_auth(READER_KEY))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "INVALID_ARGUMENT"


def test_get_answer_needs_auditor_and_returns_the_trace(asked, client):
    denied = client.get(f"/v1/answers/{asked['answer_id']}", headers=_auth(READER_KEY))
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "PERMISSION_DENIED"
    record = client.get(f"/v1/answers/{asked['answer_id']}", headers=_auth(AUDITOR_KEY))
    assert record.status_code == 200
    body = record.json()
    assert body["answer"]["answer_id"] == asked["answer_id"] and body["answer"]["text"] == asked["text"]
    assert [(c["clause_id"], c["quote"]) for c in body["answer"]["citations"]] == [
        (c["clause_id"], c["quote"]) for c in asked["citations"]
    ]
    assert body["actor"].startswith("key-") and READER_KEY not in record.text
    missing = client.get("/v1/answers/no-such-answer", headers=_auth(AUDITOR_KEY))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"


def test_clause_ids_with_slashes_and_cjk_route_correctly(asked, client):
    cited = asked["citations"][0]["clause_id"]
    assert "/" in cited
    clause = client.get(f"/v1/clauses/{_path(cited)}", headers=_auth(READER_KEY))
    assert clause.status_code == 200 and clause.json()["clause_id"] == cited
    assert clause.json()["history"] and clause.json()["document_title"]
    answers = client.get(f"/v1/clauses/{_path(cited)}/answers", headers=_auth(AUDITOR_KEY))
    assert answers.status_code == 200
    assert asked["answer_id"] in [a["answer_id"] for a in answers.json()["answers"]]
    assert client.get(f"/v1/clauses/{_path(cited)}/answers", headers=_auth(READER_KEY)).status_code == 403
    missing = client.get(f"/v1/clauses/{_path('NOPE/第九百条')}", headers=_auth(READER_KEY))
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-key"}, {"Authorization": f"Basic {READER_KEY}"}],
)
def test_missing_or_bad_key_is_401_with_challenge(client, headers):
    response = client.post("/v1/ask", json={"question": QUESTION}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"question": ""}, "empty"),
        ({"question": "问" * 5000}, "limit"),
        ({"question": 42}, "question"),
        ({"question": ["a"]}, "question"),
        ({}, "question"),
        ({"question": QUESTION, "k": 999}, "k must be"),
    ],
)
def test_invalid_requests_are_422(client, body, needle):
    response = client.post("/v1/ask", json=body, headers=_auth(READER_KEY))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT" and needle in error["message"]


def test_tiny_deadline_is_504(client):
    response = client.post(
        "/v1/ask", json={"question": QUESTION}, headers={**_auth(READER_KEY), "X-Timeout-Ms": "1"}
    )
    assert response.status_code == 504 and response.json()["error"]["code"] == "DEADLINE_EXCEEDED"


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["graph_version"] > 0


def test_readiness_is_503_when_neo4j_is_down(keyring, tmp_path):
    """A service whose Neo4j cannot be reached: /readyz says 503, /healthz still 200."""
    from fastapi.testclient import TestClient
    from neo4j import GraphDatabase

    from kgqa.settings import Settings
    from kgqa.wiring import build_qa_service
    from serving.http.app import create_app

    dead = "bolt://127.0.0.1:9"  # discard port: nothing listens
    with GraphDatabase.driver(dead, connection_timeout=1, max_transaction_retry_time=0) as driver:
        service = build_qa_service(Settings(neo4j_uri=dead, home=tmp_path), driver)
        with TestClient(create_app(service, keyring), raise_server_exceptions=False) as c:
            assert c.get("/healthz").status_code == 200
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["error"]["code"] == "UNAVAILABLE"


def test_metrics_docs_and_openapi(asked, client):
    text = client.get("/metrics").text
    assert 'kgqa_requests_total{method="POST",route="/v1/ask",status="200",transport="http"}' in text
    assert 'route="/v1/ask",status="401",transport="http"' in text
    assert 'kgqa_answers_total{status="VERIFIED",transport="http"}' in text
    assert 'kgqa_ask_duration_seconds_count{transport="http"}' in text
    # Raw clause ids never become labels.
    assert "第五条" not in text
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/answers/{answer_id}", "/v1/clauses/{clause_id}"} <= set(spec["paths"])
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_chat_completions_is_mounted_for_readers(qa_service, client):
    if not hasattr(qa_service, "active_backend"):
        pytest.skip("QAService.active_backend()/retrieve() not added yet: the route is not mounted")
    body = {"model": "kgqa", "messages": [{"role": "user", "content": QUESTION}]}
    assert client.post("/v1/chat/completions", json=body).status_code == 401
    response = client.post("/v1/chat/completions", json=body, headers=_auth(READER_KEY))
    assert response.status_code == 200, response.text
    content = response.json()["choices"][0]["message"]["content"]
    assert "成本" in content and "[[" in content
