"""Ask over gRPC: latency (p50/p99) and throughput with 8 concurrent clients vs 1 client.

By default it is self-contained: starts its own Neo4j (own data dir, free port), ingests a few
corpus files, builds the real QAService (backend from KGQA_BACKEND__KIND, default extractive)
and starts the gRPC + REST servers on free ports. With ``--grpc-target HOST:PORT --key KEY`` it
measures a running server instead (e.g. one started by ``kgqa serve``). Both phases run in the
same process against the same server: first 1 client thread (the baseline), then
``--concurrency`` threads sharing one channel, like the finance portal does. Usage:

    .venv/bin/python bench/bench_ask.py [--seconds 10] [--requests N] [--concurrency 8] [--json]
    .venv/bin/python bench/bench_ask.py --grpc-target 127.0.0.1:50051 --key "$KEY"
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CORPUS = Path(os.environ.get("KGQA_SHARED_DIR", ROOT.parent / "shared")) / "corpus"
DOCS = (
    "standards/企业会计准则第1号——存货（2006）.md",
    "standards/企业会计准则第4号——固定资产（2006）.md",
    "laws/增值税暂行条例(2017-11-19).md",
    "laws/发票管理办法(2023-07-20).md",
)
QUESTIONS = (
    "存货应当按照什么进行初始计量？",
    "存货的采购成本包括哪些费用？",
    "固定资产同时满足哪些条件才能予以确认？",
    "增值税的纳税义务发生时间是什么？",
    "小规模纳税人的增值税征收率是多少？",
    "发票应当由谁负责印制？",
    "存货的加工成本包括什么？",
    "固定资产的折旧方法有哪些？",
)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measure(target: str, key: str, threads: int, seconds: float, requests: int | None) -> dict:
    """Run ``threads`` clients until ``seconds`` pass or ``requests`` calls are done in total."""
    from serving.grpc import qa_pb2, qa_pb2_grpc

    latencies: list[float] = []
    errors: dict[str, int] = {}
    statuses: dict[str, int] = {}
    server_ms = {"retrieval_ms": 0.0, "generation_ms": 0.0, "verification_ms": 0.0, "total_ms": 0.0}
    lock = threading.Lock()
    issued = 0
    metadata = [("authorization", f"Bearer {key}")]

    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = qa_pb2_grpc.QAServiceStub(channel)
        stop_at = time.perf_counter() + seconds

        def client(n: int) -> None:
            nonlocal issued
            i = n
            while time.perf_counter() < stop_at:
                with lock:
                    if requests is not None and issued >= requests:
                        return
                    issued += 1
                request = qa_pb2.AskRequest(question=QUESTIONS[i % len(QUESTIONS)], k=5)
                i += threads
                t0 = time.perf_counter()
                try:
                    answer = stub.Ask(request, metadata=metadata, timeout=60)
                except grpc.RpcError as exc:
                    with lock:
                        errors[exc.code().name] = errors.get(exc.code().name, 0) + 1
                    continue
                dt = time.perf_counter() - t0
                status = qa_pb2.AnswerStatus.Name(answer.status)
                with lock:
                    latencies.append(dt)
                    statuses[status] = statuses.get(status, 0) + 1
                    for name in server_ms:
                        server_ms[name] += getattr(answer.timings, name)

        started = time.perf_counter()
        workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - started
    return {
        "clients": threads,
        "requests": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "seconds": round(wall, 3),
        "qps": round(len(latencies) / wall, 1) if wall else 0.0,
        "p50_ms": round(_percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(_percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else float("nan"),
        # Where the time goes inside the service (means of the answers' own timings).
        "server_mean_ms": {k: round(v / max(len(latencies), 1), 2) for k, v in server_ms.items()},
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_own_server(stack: ExitStack, uri: str | None, max_workers: int) -> tuple[str, str]:
    """Neo4j (unless ``uri``) + ingested corpus files + gRPC/REST servers; returns (target, key)."""
    from neo4j import GraphDatabase

    from kg.local_server import LocalNeo4j
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service, build_qa_service
    from serving.auth import KeyRing
    from serving.server import start_servers
    from serving.types import Role

    if uri is None:
        server = LocalNeo4j(Path(tempfile.mkdtemp(prefix="kgqa-bench-ask-")), _free_port())
        server.start(timeout=240)
        stack.callback(server.stop)
        uri = server.bolt_uri
    settings = Settings(neo4j_uri=uri)
    driver = stack.enter_context(GraphDatabase.driver(uri, auth=settings.neo4j_auth))
    docs = [CORPUS / d for d in DOCS if (CORPUS / d).exists()] or [ROOT / "samples" / "manuals"]
    report = build_ingest_service(settings, driver).ingest(docs)
    if not report.ingested:
        raise SystemExit(f"nothing ingested from {docs}: {report.failed}")
    key = secrets.token_urlsafe(24)
    running = start_servers(
        build_qa_service(settings, driver),
        KeyRing([(key, Role.READER)], source="bench"),
        grpc_port=0,
        http_port=0,
        max_workers=max_workers,
        max_concurrent_rpcs=max_workers * 8,
        grace=1.0,
    )
    stack.callback(running.stop)
    return f"127.0.0.1:{running.grpc_port}", key


def build_stubs() -> None:
    """Make sure the gRPC stubs exist (idempotent, fast when up to date)."""
    subprocess.run([sys.executable, str(ROOT / "protos" / "build.py")], check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grpc-target", help="HOST:PORT of a running server (default: start our own)")
    ap.add_argument("--key", default=os.environ.get("KGQA_BENCH_KEY"), help="API key for --grpc-target")
    ap.add_argument("--uri", help="Neo4j to ingest into when starting our own server (default: our own)")
    ap.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    ap.add_argument("--requests", type=int, help="stop each phase after this many requests")
    ap.add_argument("--concurrency", type=int, default=8, help="client threads of the loaded phase")
    ap.add_argument("--max-workers", type=int, default=16, help="server threads (own server only)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from kgqa.logging import configure_logging

    configure_logging("WARNING")
    logging.getLogger("neo4j").setLevel(logging.ERROR)  # query notifications are not our figures
    build_stubs()
    with ExitStack() as stack:
        if args.grpc_target:
            if not args.key:
                raise SystemExit("--grpc-target needs --key (or KGQA_BENCH_KEY)")
            target, key = args.grpc_target, args.key
        else:
            target, key = start_own_server(stack, args.uri, args.max_workers)
        measure(target, key, 1, 2.0, 20)  # warm-up: connections, caches, lazy imports
        baseline = measure(target, key, 1, args.seconds, args.requests)
        loaded = measure(target, key, args.concurrency, args.seconds, args.requests)
    results = {
        "target": target if args.grpc_target else "own server",
        "baseline": baseline,
        "concurrent": loaded,
        "qps_ratio": round(loaded["qps"] / baseline["qps"], 2) if baseline["qps"] else None,
        "p50_ratio": round(loaded["p50_ms"] / baseline["p50_ms"], 2) if baseline["p50_ms"] else None,
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print(f"Ask over gRPC ({results['target']}, {results['cpus']} CPUs)")
    for label, r in (("1 client (baseline)", baseline), (f"{args.concurrency} clients", loaded)):
        print(
            f"  {label:20s} {r['requests']:6d} req  {r['qps']:8.1f} QPS  p50 {r['p50_ms']:8.2f} ms"
            f"  p99 {r['p99_ms']:8.2f} ms  errors {r['errors'] or '-'}  statuses {r['statuses']}"
        )
        print(f"  {'':20s} in the service (mean ms): {r['server_mean_ms']}")
    print(
        f"  throughput x{results['qps_ratio']} with {args.concurrency} clients; p50 x{results['p50_ratio']}"
    )


if __name__ == "__main__":
    main()
