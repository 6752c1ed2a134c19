"""The REST app over real sockets (uvicorn), the real QAService and a real Neo4j with corpus files."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

import httpx
import pytest
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
    with GraphDatabase.driver(dead) as driver:
        settings = Settings(neo4j_uri=dead, home=tmp_path, request_deadline_s=1.0)
        service = build_qa_service(settings, driver)
        with TestClient(create_app(service, keyring), raise_server_exceptions=False) as c:
            assert c.get("/healthz").status_code == 200
            ready = c.get("/readyz")
            assert ready.status_code == 503 and ready.json()["error"]["code"] == "UNAVAILABLE"
            # no key is needed for /readyz: it must not tell anyone where the graph lives
            message = ready.json()["error"]["message"]
            assert "graph unavailable" in message
            assert "127.0.0.1" not in ready.text and "bolt" not in ready.text.lower()
        service.breaker.stop()


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


def test_a_500_costs_one_log_record_without_secrets_or_personal_data(client, broken_phrase_index, logs):
    """A bug answers 500 with an incident id; the log holds one record under it, and neither the
    caller's key nor the question's phone and ID numbers (rich tracebacks printed them as locals)."""
    capture = logs()
    response = client.post("/v1/ask", json={"question": QUESTION_WITH_PII}, headers=_auth(AUDITOR_KEY))
    assert response.status_code == 500, response.text
    time.sleep(0.2)  # uvicorn would log its own traceback right after the response
    err = capture.readouterr().err
    for leak in (AUDITOR_KEY, READER_KEY, PHONE, RESIDENT_ID):
        assert leak not in err, leak
    assert "Exception in ASGI application" not in err  # no second traceback from uvicorn
    assert len(err) < 20_000
    error = response.json()["error"]
    assert error["code"] == "INTERNAL" and re.fullmatch(r"[0-9a-f]{12}", error["incident"])
    assert error["incident"] in error["message"] and BROKEN_INDEX_MESSAGE not in response.text
    assert err.count("http.internal_error") == 1 and f"incident={error['incident']}" in err
    assert "Traceback" in err and err.count("Traceback (most recent call last)") <= 2  # cause + error


def test_a_letter_near_the_limit_is_answered(client, corpus_dir):
    """The README's 2,000 characters, in CJK: Lucene's clause limit used to turn these into 500s."""
    for length in (1990, 2000):
        letter = corpus_letter(corpus_dir, length)
        assert len(letter.strip()) == length
        response = client.post("/v1/ask", json={"question": letter}, headers=_auth(READER_KEY), timeout=120)
        assert response.status_code == 200, response.text[:500]
        body = response.json()
        assert body["status"] in ("VERIFIED", "UNVERIFIED", "NO_EVIDENCE") and body["text"]
    too_long = client.post(
        "/v1/ask", json={"question": corpus_letter(corpus_dir, 2001)}, headers=_auth(READER_KEY)
    )
    assert too_long.status_code == 422
    assert too_long.json()["error"]["message"] == "question is 2001 characters; the limit is 2000"


def test_a_megabyte_body_is_refused_at_once(client):
    big = {"model": "kgqa", "messages": [{"role": "user", "content": "存货" * 350_000}]}  # ~1 MB of JSON
    for path in ("/v1/chat/completions", "/v1/ask"):
        payload = big if path.endswith("completions") else {"question": "存货" * 350_000}
        start = time.monotonic()
        response = client.post(path, json=payload, headers=_auth(READER_KEY))
        assert response.status_code == 413, response.text[:300]
        assert time.monotonic() - start < 10  # it used to take 17 s to a 500
        error = response.json()["error"]
        assert error["code"] == "RESOURCE_EXHAUSTED" and "KGQA_MAX_REQUEST_BYTES" in error["message"]


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ([{"role": "user", "content": "存货\x00如何计量？"}], "messages[0].content contains control"),
        (
            [{"role": "system", "content": "资料\x1b[31m"}, {"role": "user", "content": QUESTION}],
            "messages[0].content contains control",
        ),
        (
            [{"role": "user", "content": "问" * 2001}],
            "messages[0].content is 2001 characters; the limit is 2000",
        ),
        (
            [{"role": "user", "content": QUESTION}, {"role": "user", "content": "  "}],
            "messages[1].content is empty",
        ),
        ([{"role": "system", "content": "只依据条款作答。"}], "a user message"),
    ],
)
def test_chat_completions_validate_like_ask_and_name_the_field(client, messages, needle):
    response = client.post(
        "/v1/chat/completions", json={"model": "kgqa", "messages": messages}, headers=_auth(READER_KEY)
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT" and needle in error["message"]


def test_metrics_show_the_graph_breaker(client):
    text = client.get("/metrics").text
    assert 'kgqa_graph_breaker{kgqa_graph_breaker="closed"} 1.0' in text
    assert "kgqa_graph_breaker_trips_total" in text
