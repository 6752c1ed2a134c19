"""Neo4j stops under load: how fast questions fail, whether the probes still answer, recovery.

Self-contained: starts its own Neo4j (own data dir, free port), ingests two corpus files, runs
``kgqa serve`` as a separate process (production wiring and settings: the driver of
``build_driver``, KGQA_REQUEST_DEADLINE_S, the circuit breaker; a process of its own so the load
generator's threads do not share its GIL), and loads it with reader clients asking over REST and
gRPC in a loop — more of them than the server has workers. Then it stops Neo4j and measures,
while it is down:

- time to 503 of a ``POST /v1/ask`` sent right after Neo4j stopped (issue 13: ~100 s before);
- latency of the questions that followed (the breaker answers them) and their status codes;
- time to answer of ``/healthz``, ``/readyz``, ``/metrics`` and the gRPC health Check, sampled
  every 0.25 s throughout (before: 28 s, 33 s, and no gRPC answer within 140 s), and how long
  after the stop ``/readyz`` said 503 and gRPC health said NOT_SERVING;

then starts Neo4j again and measures the time from Bolt answering to the first answered question,
``/readyz`` 200 and gRPC SERVING. Usage:

    .venv/bin/python bench/bench_outage.py [--http-clients 48] [--grpc-clients 24] [--down-s 20]
                                           [--error-pause-s 0.5] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import httpx

from kg.local_server import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPUS = Path(os.environ.get("KGQA_SHARED_DIR", ROOT.parent / "shared")) / "corpus"
DOCS = ("standards/企业会计准则第1号——存货（2006）.md", "laws/增值税暂行条例(2017-11-19).md")
QUESTION = "存货应当按照什么进行初始计量？"


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)


def _summary(values: list[float]) -> dict[str, float | int | None]:
    return {
        "n": len(values),
        "p50_s": _pct(values, 0.5),
        "p99_s": _pct(values, 0.99),
        "max_s": _pct(values, 1.0),
    }


class Recorder:
    """Timestamped outcomes of every request, by kind (ask over http/grpc, each probe)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, str]] = []  # kind, start, end, outcome
        self._lock = threading.Lock()

    def add(self, kind: str, start: float, outcome: str) -> None:
        with self._lock:
            self.rows.append((kind, start, time.monotonic(), outcome))

    def select(self, kind: str, after: float, before: float) -> list[tuple[float, float, str]]:
        with self._lock:
            return [(s, e, o) for k, s, e, o in self.rows if k == kind and after <= s < before]


def serve(home: Path, uri: str, key: str, log: Path) -> tuple[subprocess.Popen, str, int]:
    """``kgqa serve`` on free ports; returns the process, the base URL and the gRPC port."""
    grpc_port, http_port = free_port(), free_port()
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "KGQA_HOME": str(home),
            "KGQA_NEO4J_URI": uri,
            "KGQA_API_KEYS": f"{key}=reader",
            "KGQA_LOG_LEVEL": "WARNING",
            "KGQA_LOG_JSON": "true",
        }
    )
    out = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kgqa", "serve", "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=out,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if "kgqa serving" not in line:
        proc.kill()
        raise SystemExit(f"kgqa serve did not start; see {log}")
    return proc, f"http://127.0.0.1:{http_port}", grpc_port


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--http-clients", type=int, default=48, help="REST clients asking in a loop")
    ap.add_argument("--grpc-clients", type=int, default=24, help="gRPC clients asking in a loop")
    ap.add_argument("--down-s", type=float, default=20.0, help="seconds Neo4j stays down")
    ap.add_argument(
        "--error-pause-s",
        type=float,
        default=0.5,
        help="a client waits this long after an error before asking again, as a real client backs off "
        "(0: hammer; on a small machine that starves the restarting Neo4j of CPU)",
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from neo4j import GraphDatabase

    from kg.local_server import LocalNeo4j
    from kgqa.logging import configure_logging
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service

    configure_logging("WARNING")
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)
    subprocess.run([sys.executable, str(ROOT / "protos" / "build.py")], check=True, capture_output=True)
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from serving.grpc import qa_pb2, qa_pb2_grpc

    work = Path(tempfile.mkdtemp(prefix="kgqa-bench-outage-"))
    neo4j = LocalNeo4j(work / "neo4j", free_port())
    neo4j.start(timeout=240)
    settings = Settings(neo4j_uri=neo4j.bolt_uri, home=work / "home")
    with GraphDatabase.driver(neo4j.bolt_uri) as driver:
        report = build_ingest_service(settings, driver).ingest([CORPUS / d for d in DOCS])
        if not report.ingested:
            raise SystemExit(f"nothing ingested: {report.failed}")
    key = secrets.token_urlsafe(24)
    proc, base, grpc_port = serve(work / "home", neo4j.bolt_uri, key, work / "serve.log")
    headers = {"Authorization": f"Bearer {key}"}
    metadata = [("authorization", f"Bearer {key}")]
    channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
    stub = qa_pb2_grpc.QAServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)
    rec = Recorder()
    stop = threading.Event()

    def http_asker() -> None:
        with httpx.Client(timeout=300) as client:
            while not stop.is_set():
                t = time.monotonic()
                try:
                    code = str(
                        client.post(
                            f"{base}/v1/ask", json={"question": QUESTION}, headers=headers
                        ).status_code
                    )
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                rec.add("ask_http", t, code)
                if code != "200":
                    time.sleep(args.error_pause_s)

    def grpc_asker() -> None:
        while not stop.is_set():
            t = time.monotonic()
            try:
                stub.Ask(qa_pb2.AskRequest(question=QUESTION), metadata=metadata, timeout=300)
                code = "OK"
            except grpc.RpcError as exc:
                code = exc.code().name
            rec.add("ask_grpc", t, code)
            if code != "OK":
                time.sleep(args.error_pause_s)

    def http_probe(path: str) -> None:
        with httpx.Client(timeout=300) as client:
            while not stop.is_set():
                t = time.monotonic()
                try:
                    code = str(client.get(f"{base}{path}").status_code)
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                rec.add(path, t, code)
                time.sleep(0.25)

    def grpc_probe() -> None:
        while not stop.is_set():
            t = time.monotonic()
            try:
                status = health.Check(
                    health_pb2.HealthCheckRequest(service="kgqa.v1.QAService"), timeout=300
                ).status
                code = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            except grpc.RpcError as exc:
                code = exc.code().name
            rec.add("grpc_health", t, code)
            time.sleep(0.25)

    try:
        for _ in range(5):  # warm-up: index, connections, lazy imports
            httpx.post(f"{base}/v1/ask", json={"question": QUESTION}, headers=headers, timeout=120)
        threads = [threading.Thread(target=http_asker, daemon=True) for _ in range(args.http_clients)]
        threads += [threading.Thread(target=grpc_asker, daemon=True) for _ in range(args.grpc_clients)]
        threads += [
            threading.Thread(target=http_probe, args=(p,), daemon=True)
            for p in ("/healthz", "/readyz", "/metrics")
        ]
        threads.append(threading.Thread(target=grpc_probe, daemon=True))
        for t in threads:
            t.start()
        time.sleep(5.0)  # loaded and answering

        t_stop = time.monotonic()
        neo4j.stop()
        t_down = time.monotonic()
        with httpx.Client(timeout=300) as client:
            first = client.post(f"{base}/v1/ask", json={"question": QUESTION}, headers=headers)
        t_first = time.monotonic() - t_down
        time.sleep(max(0.0, args.down_s - (time.monotonic() - t_down)))

        t_restart = time.monotonic()
        neo4j.start(timeout=240)
        t_bolt = time.monotonic()
        deadline = t_bolt + 120
        while time.monotonic() < deadline:
            answered = [r for r in rec.select("ask_http", t_bolt, float("inf")) if r[2] == "200"]
            ready = [r for r in rec.select("/readyz", t_bolt, float("inf")) if r[2] == "200"]
            serving = [r for r in rec.select("grpc_health", t_bolt, float("inf")) if r[2] == "SERVING"]
            if answered and ready and serving:
                break
            time.sleep(0.25)
        time.sleep(1.0)
    finally:
        stop.set()
        proc.terminate()
        proc.wait(30)
        channel.close()
        neo4j.stop()

    def outcomes(kind: str, a: float, b: float) -> dict[str, int]:
        return dict(Counter(o for _, _, o in rec.select(kind, a, b)))

    def latencies(kind: str, a: float, b: float) -> list[float]:
        return [e - s for s, e, _ in rec.select(kind, a, b)]

    def first_end(kind: str, a: float, ok: str) -> float | None:
        ends = [e for s, e, o in rec.select(kind, a, float("inf")) if o == ok]
        return round(min(ends) - a, 3) if ends else None

    down = (t_down, t_restart)
    results = {
        "cpus": os.cpu_count(),
        "load": {"http_clients": args.http_clients, "grpc_clients": args.grpc_clients},
        # the same load with Neo4j up: what the machine manages at all (probes included)
        "before_stop": {
            kind: _summary(latencies(kind, t_stop - 4.0, t_stop))
            for kind in ("ask_http", "ask_grpc", "/healthz", "/readyz", "grpc_health")
        },
        "neo4j_stop_s": round(t_down - t_stop, 2),
        # questions asked while Neo4j was shutting down: the first ones meet the dead graph and
        # spend the request deadline; once one gives up, the breaker answers the rest
        "during_stop": {
            "ask_http": {
                **_summary(latencies("ask_http", t_stop, t_down)),
                "codes": outcomes("ask_http", t_stop, t_down),
            },
            "ask_grpc": {
                **_summary(latencies("ask_grpc", t_stop, t_down)),
                "codes": outcomes("ask_grpc", t_stop, t_down),
            },
        },
        "ask_first_503_s": round(t_first, 3),
        "ask_first_503_status": first.status_code,
        "while_down": {
            "ask_http": {**_summary(latencies("ask_http", *down)), "codes": outcomes("ask_http", *down)},
            "ask_grpc": {**_summary(latencies("ask_grpc", *down)), "codes": outcomes("ask_grpc", *down)},
            **{
                p: {**_summary(latencies(p, *down)), "codes": outcomes(p, *down)}
                for p in ("/healthz", "/readyz", "/metrics", "grpc_health")
            },
        },
        "readyz_503_after_stop_s": first_end("/readyz", t_down, "503"),
        "grpc_not_serving_after_stop_s": first_end("grpc_health", t_down, "NOT_SERVING"),
        "neo4j_start_s": round(t_bolt - t_restart, 2),
        "after_bolt_back": {
            "first_answer_s": first_end("ask_http", t_bolt, "200"),
            "readyz_200_s": first_end("/readyz", t_bolt, "200"),
            "grpc_serving_s": first_end("grpc_health", t_bolt, "SERVING"),
        },
        "serve_log": str(work / "serve.log"),
    }
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print(
        f"Neo4j outage under load ({args.http_clients} REST + {args.grpc_clients} gRPC clients, {results['cpus']} CPUs)"
    )
    for kind, r in results["before_stop"].items():
        print(
            f"  Neo4j up    {kind:12s} n={r['n']:6d}  p50 {r['p50_s']} s  p99 {r['p99_s']} s  max {r['max_s']} s"
        )
    print(
        f"  Neo4j took {results['neo4j_stop_s']} s to stop; questions asked meanwhile: {results['during_stop']}"
    )
    print(f"  POST /v1/ask right after the stop: {first.status_code} in {results['ask_first_503_s']} s")
    for kind, r in results["while_down"].items():
        print(
            f"  while down  {kind:12s} n={r['n']:6d}  p50 {r['p50_s']} s  p99 {r['p99_s']} s  max {r['max_s']} s  {r['codes']}"
        )
    print(
        f"  /readyz 503 after {results['readyz_503_after_stop_s']} s; gRPC NOT_SERVING after {results['grpc_not_serving_after_stop_s']} s"
    )
    print(f"  Bolt back after {results['neo4j_start_s']} s; then {results['after_bolt_back']}")


if __name__ == "__main__":
    main()
