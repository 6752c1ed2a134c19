"""`kgqa neo4j start|status|stop` on a second instance with its own home and port."""

from __future__ import annotations

import json
import socket

import pytest
from cli_run import kgqa

pytestmark = pytest.mark.neo4j


def test_start_status_stop_second_instance(kgqa_env, tmp_path, neo4j_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path / "second"
    env = dict(kgqa_env, KGQA_NEO4J_HEAP_MB="384", KGQA_NEO4J_PAGECACHE_MB="32")
    started = kgqa(["neo4j", "start", "--bolt-port", str(port), "--home", str(home), "--json"], env)
    assert started.returncode == 0, started.stderr
    info = json.loads(started.stdout)
    try:
        assert info["running"] and info["bolt_answers"]
        assert info["bolt_uri"] == f"bolt://127.0.0.1:{port}"
        assert (home / "neo4j.pid").read_text().strip() == str(info["pid"])
        assert (home / "data" / "databases").is_dir()
        status = kgqa(["neo4j", "status", "--bolt-port", str(port), "--home", str(home), "--json"], env)
        assert status.returncode == 0 and json.loads(status.stdout)["bolt_answers"] is True
        # starting again is idempotent: same pid
        again = kgqa(["neo4j", "start", "--bolt-port", str(port), "--home", str(home), "--json"], env)
        assert json.loads(again.stdout)["pid"] == info["pid"]
        # the session's own server is a different instance and still answers
        assert neo4j_server.bolt_answers()
    finally:
        stopped = kgqa(["neo4j", "stop", "--bolt-port", str(port), "--home", str(home), "--json"], env)
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["stopped"] is True
    assert not (home / "neo4j.pid").exists()
    status = kgqa(["neo4j", "status", "--bolt-port", str(port), "--home", str(home)], env)
    assert status.returncode == 1 and "not running" in status.stdout
    assert neo4j_server.bolt_answers()
