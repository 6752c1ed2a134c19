"""Neo4j going away and coming back: 503/UNAVAILABLE with a clear message, then service resumes."""

from __future__ import annotations

import socket

import httpx
import pytest
from serving_data import DOCS, QUESTION, READER_KEY

pytestmark = pytest.mark.neo4j


def test_neo4j_outage_is_503_and_service_resumes_by_itself(tmp_path, corpus_dir, keyring):
    from neo4j import GraphDatabase

    from kg.local_server import LocalNeo4j
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service, build_qa_service
    from serving.server import start_servers

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = LocalNeo4j(tmp_path / "neo4j", port, heap_mb=384, pagecache_mb=32)
    server.start(timeout=240)
    settings = Settings(neo4j_uri=server.bolt_uri, home=tmp_path / "home")
    driver = GraphDatabase.driver(
        server.bolt_uri, auth=None, connection_timeout=2, max_transaction_retry_time=1
    )
    running = None
    try:
        assert build_ingest_service(settings, driver).ingest([corpus_dir / DOCS[0]]).ok
        running = start_servers(
            build_qa_service(settings, driver),
            keyring,
            host="127.0.0.1",
            grpc_port=0,
            http_port=0,
            grace=1.0,
            health_interval_s=0.5,
        )
        url = f"http://127.0.0.1:{running.http_port}/v1/ask"
        headers = {"Authorization": f"Bearer {READER_KEY}"}
        ok = httpx.post(url, json={"question": QUESTION}, headers=headers, timeout=60)
        assert ok.status_code == 200 and ok.json()["status"] == "VERIFIED"

        server.stop()
        down = httpx.post(url, json={"question": QUESTION}, headers=headers, timeout=60)
        assert down.status_code == 503
        assert down.json()["error"]["code"] == "UNAVAILABLE"
        assert "Neo4j" in down.json()["error"]["message"]
        assert httpx.get(f"http://127.0.0.1:{running.http_port}/healthz", timeout=10).status_code == 200

        server.start(timeout=240)  # same store, same port: nothing restarted on our side
        back = httpx.post(url, json={"question": QUESTION}, headers=headers, timeout=60)
        assert back.status_code == 200 and back.json()["status"] == "VERIFIED"
    finally:
        if running is not None:
            running.stop(grace=1.0)
        driver.close()
        server.stop()
