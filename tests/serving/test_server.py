"""``run_servers`` as ``kgqa serve`` runs it: a real process, free ports, SIGTERM/SIGINT -> clean exit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

pytestmark = pytest.mark.neo4j

SCRIPT = """
from neo4j import GraphDatabase
from kgqa.settings import Settings
from kgqa.wiring import build_qa_service
from serving.auth import KeyRing
from serving.server import run_servers

settings = Settings()
with GraphDatabase.driver(settings.neo4j_uri) as driver:
    run_servers(
        build_qa_service(settings, driver), KeyRing.from_settings("k=reader", None),
        host="127.0.0.1", grpc_port=0, http_port=0, max_workers=4, max_concurrent_rpcs=8, grace=2.0,
    )
print("exited cleanly", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_servers_serves_both_and_stops_on_signal(neo4j_server, ingested, serving_home, signum):
    env = {
        **os.environ,
        "KGQA_NEO4J_URI": neo4j_server.bolt_uri,
        "KGQA_HOME": str(serving_home),
        "PYTHONUNBUFFERED": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        seen, match = [], None
        while match is None and len(seen) < 50:  # log lines may come first
            seen.append(proc.stdout.readline())
            match = re.search(r"gRPC on 127\.0\.0\.1:(\d+) and HTTP on http://127\.0\.0\.1:(\d+)", seen[-1])
            if not seen[-1] and proc.poll() is not None:
                break
        assert match, "".join(seen) + ("" if proc.poll() is None else proc.stderr.read())
        grpc_port, http_port = int(match.group(1)), int(match.group(2))
        assert grpc_port and http_port and grpc_port != http_port
        assert httpx.get(f"http://127.0.0.1:{http_port}/healthz", timeout=10).json() == {"status": "ok"}
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
            check = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "kgqa stopping" in out and "exited cleanly" in out
