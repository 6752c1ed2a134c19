"""Ask over gRPC against a separate ``kgqa serve`` process: QPS, p50/p99 at 1, 8 and 32 clients.

By default it is self-contained: starts its own Neo4j (own data dir, free port; or ``--uri``),
ingests ``--corpus`` (the 42 accounting standards of ../shared/corpus/cas-all), builds the
retrieval index once, and for each configuration under test starts ``kgqa serve`` as a separate
process on free ports, loads it from this process and stops it. With ``--grpc-target HOST:PORT
--key KEY`` it measures a server that is already running instead.

Every client has its own channel (its own TCP connection), as the portal's many callers do: with
``--workers N`` the kernel spreads connections, not calls, over the workers.

Configurations (``--configs``, several run one after the other against the same graph):

- ``fast``: the serving defaults (evidence snapshot, audit journal with group commit, one BLAS
  thread), with ``--workers`` processes;
- ``baseline``: those optimizations off as far as settings reach (evidence read from Neo4j per
  answer, every answer its own audit transaction, BLAS threads as the library likes, 1 process):
  today's behaviour before issue 17, in the same run;
- ``limited``: ``fast`` admitting 8 calls per worker: over that, calls must come back
  RESOURCE_EXHAUSTED at once (``errors`` and ``rejected_p99_ms`` of the 32-client phase).

Questions (``--questions``): ``short`` (eval/questions.jsonl, the standards' ones), ``letters``
(the real letters of ../shared/eval/dev/citation_dev.jsonl, read in place) or ``mixed``.

Each phase also reports the CPU each side spent per answer (``cpu_ms_per_answer``: the server's
processes, the bench's own Neo4j when it started one, and this client process): on 2 cores they
all share the machine, and the sum says what an answer costs it.

Also: ``--soak SECONDS`` (RSS of the server processes over a long 8-client phase, growth from
its first to its last minute), ``--profile`` (py-spy flame graph of each server process during
the 8-client phase, into bench/out/), ``--ghz`` (the same phases with ghz when it is installed).

    .venv/bin/python bench/bench_ask.py --configs baseline,fast --workers 2 --clients 1,8,32
    .venv/bin/python bench/bench_ask.py --uri bolt://127.0.0.1:7687 --home "$KGQA_HOME" --soak 600
    .venv/bin/python bench/bench_ask.py --grpc-target 127.0.0.1:50051 --key "$KEY"
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from kg.local_server import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("KGQA_SHARED_DIR", ROOT.parent / "shared"))
OUT = ROOT / "bench" / "out"
KEY = "bench-reader-key"

CONFIGS: dict[str, dict[str, str]] = {
    "fast": {},
    "baseline": {
        "KGQA_EVIDENCE_SNAPSHOT": "false",
        "KGQA_AUDIT_JOURNAL": "false",
        "KGQA_AUDIT_MAX_BATCH": "1",
        "KGQA_NATIVE_THREADS": "0",
        "KGQA_WORKERS": "1",
    },
    # back-pressure: 8 calls per worker admitted; with 32 clients the rest must be refused at once
    "limited": {"KGQA_GRPC_MAX_CONCURRENT_RPCS": "8", "KGQA_HTTP_MAX_CONCURRENT_REQUESTS": "8"},
}


def load_questions(kind: str) -> list[str]:
    """Short questions on the standards, the real letters, or both interleaved."""
    short = [
        json.loads(line)["question"]
        for line in (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip() and (json.loads(line).get("doc") or "").startswith("CAS")
    ]
    letters = [
        json.loads(line)["question"]
        for line in (SHARED / "eval" / "dev" / "citation_dev.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if kind == "short":
        return short
    if kind == "letters":
        return letters
    mixed = []
    for i in range(max(len(short), len(letters))):
        mixed += [q[i] for q in (short, letters) if i < len(q)]
    return mixed


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``values`` (NaN when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run_clients(
    connect: Callable[[], AbstractContextManager[Callable[[str], object]]],
    questions: list[str],
    clients: int,
    seconds: float,
) -> tuple[list[float], dict[str, int], float]:
    """``clients`` threads, each calling what its own ``connect()`` gives, in a loop for ``seconds``.

    Every thread connects first and they all start together (a barrier), so that connecting is
    not timed. A call that raises is counted by its gRPC status name (or its type name) and the
    loop goes on. Returns the latencies of the calls that returned, the errors and the wall time.
    """
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        with connect() as call:
            start.wait()
            stop_at = time.perf_counter() + seconds
            i = n
            while time.perf_counter() < stop_at:
                question = questions[i % len(questions)]
                i += clients
                t0 = time.perf_counter()
                try:
                    call(question)
                except Exception as exc:  # counted, and the bench goes on
                    name = exc.code().name if isinstance(exc, grpc.RpcError) else type(exc).__name__
                    with lock:
                        errors[name] = errors.get(name, 0) + 1
                    continue
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - began


def measure(target: str, key: str, clients: int, seconds: float, questions: list[str]) -> dict:
    """``clients`` threads, each with its own channel, asking in a loop for ``seconds``."""
    from serving.grpc import qa_pb2, qa_pb2_grpc

    rejected: list[float] = []
    statuses: dict[str, int] = {}
    workers: dict[str, int] = {}
    server_ms = {"retrieval_ms": 0.0, "generation_ms": 0.0, "verification_ms": 0.0, "total_ms": 0.0}
    lock = threading.Lock()
    metadata = [("authorization", f"Bearer {key}")]
    answer_ids: list[str] = []

    @contextmanager
    def connect() -> Iterator[Callable[[str], None]]:
        with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
            stub = qa_pb2_grpc.QAServiceStub(channel)

            def ask(question: str) -> None:
                t0 = time.perf_counter()
                try:
                    answer, call = stub.Ask.with_call(
                        qa_pb2.AskRequest(question=question, k=5), metadata=metadata, timeout=60
                    )
                except grpc.RpcError as exc:
                    if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        with lock:
                            rejected.append(time.perf_counter() - t0)
                    raise
                worker = dict(call.initial_metadata()).get("kgqa-worker", "-")
                status = qa_pb2.AnswerStatus.Name(answer.status)
                with lock:
                    answer_ids.append(answer.answer_id)
                    statuses[status] = statuses.get(status, 0) + 1
                    workers[worker] = workers.get(worker, 0) + 1
                    for name in server_ms:
                        server_ms[name] += getattr(answer.timings, name)

            yield ask

    latencies, errors, wall = run_clients(connect, questions, clients, seconds)
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "statuses": statuses,
        "workers": workers,
        "seconds": round(wall, 2),
        "qps": round(len(latencies) / wall, 1) if wall else 0.0,
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else float("nan"),
        # back-pressure: how fast an excess call is refused (RESOURCE_EXHAUSTED)
        "rejected_p99_ms": round(percentile(rejected, 0.99) * 1000, 2) if rejected else None,
        "server_mean_ms": {k: round(v / max(len(latencies), 1), 2) for k, v in server_ms.items()},
        "answer_ids": answer_ids,
    }


# -- the server under test: a separate `kgqa serve` process ------------------------------------


@dataclass
class ServerProcess:
    """``kgqa serve`` started by the bench (its own process group: stopped whole)."""

    name: str
    proc: subprocess.Popen
    grpc_port: int
    http_port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def pids(self) -> list[int]:
        import psutil

        root = psutil.Process(self.proc.pid)
        return [root.pid, *(c.pid for c in root.children(recursive=True))]

    def workers(self) -> list[int]:
        """The processes that serve (the supervisor's children, or the one process)."""
        import psutil

        children = [
            c
            for c in psutil.Process(self.proc.pid).children()
            if "resource_tracker" not in " ".join(c.cmdline())
        ]
        return [c.pid for c in children] or [self.proc.pid]

    def rss_mb(self) -> float:
        import psutil

        total = 0
        for pid in self.workers():
            with suppress(psutil.NoSuchProcess):
                total += psutil.Process(pid).memory_info().rss
        return total / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def start_server(name: str, env: dict[str, str], workers: int, log_dir: Path) -> ServerProcess:
    """Start ``kgqa serve`` with ``env`` on free ports; return once it is ready."""
    import httpx

    grpc_port, http_port = free_port(), free_port()
    log = log_dir / f"serve-{name}.log"
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KGQA_API_KEYS": f"{KEY}=reader",
        "KGQA_LOG_LEVEL": "WARNING",
        "KGQA_WORKERS": str(workers),
        **env,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kgqa", "serve", "--grpc-port", str(grpc_port), "--http-port", str(http_port)],
        env=full_env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = ServerProcess(name, proc, grpc_port, http_port, log, env)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"kgqa serve ({name}) exited {proc.returncode}; see {log}")
        try:
            ready = httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=2).status_code == 200
            if ready and len(server.workers()) >= workers:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(1)
    server.stop()
    raise SystemExit(f"kgqa serve ({name}) was not ready within 600 s; see {log}")


def prepare_graph(stack: ExitStack, uri: str | None, home: Path, corpus: Path) -> tuple[str, int | None]:
    """Our own Neo4j with ``corpus`` ingested and the index built (unless ``uri`` is given).

    Returns:
        The Bolt URI, and the pid of the Neo4j process when the bench started it.
    """
    if uri is not None:
        return uri, None
    from neo4j import GraphDatabase

    from kg.local_server import LocalNeo4j
    from kgqa.settings import Settings
    from kgqa.wiring import build_index_store, build_ingest_service

    server = LocalNeo4j(home / "neo4j", free_port(), heap_mb=768, pagecache_mb=128)
    server.start(timeout=240)
    stack.callback(server.stop)
    settings = Settings(neo4j_uri=server.bolt_uri, home=home)
    with GraphDatabase.driver(server.bolt_uri) as driver:
        report = build_ingest_service(settings, driver).ingest([corpus])
        if not report.ingested:
            raise SystemExit(f"nothing ingested from {corpus}: {report.failed}")
        build_index_store(settings, driver).load()
    return server.bolt_uri, server.status().pid


# -- extras: soak, profile, ghz ------------------------------------------------------------------


def soak(server: ServerProcess, key: str, seconds: float, questions: list[str]) -> dict:
    """8 clients for ``seconds``; RSS of the serving processes every 10 s."""
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    started = time.monotonic()

    def sample() -> None:
        while not done.wait(10.0):
            samples.append((round(time.monotonic() - started, 1), round(server.rss_mb(), 1)))

    samples.append((0.0, round(server.rss_mb(), 1)))
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = measure(server.target, key, 8, seconds, questions)
    done.set()
    samples.append((round(time.monotonic() - started, 1), round(server.rss_mb(), 1)))
    first_minute = [mb for t, mb in samples if t >= min(60.0, seconds / 10)][:1] or [samples[0][1]]
    growth = (samples[-1][1] - first_minute[0]) / first_minute[0] * 100 if first_minute[0] else None
    result.pop("answer_ids")
    return {
        "load": result,
        "rss_mb": samples,
        "growth_pct_after_warmup": round(growth, 2) if growth else growth,
    }


def profile(server: ServerProcess, key: str, seconds: float, questions: list[str], clients: int) -> list[str]:
    """py-spy flame graphs of every serving process while ``clients`` clients ask."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    OUT.mkdir(parents=True, exist_ok=True)
    outputs, procs = [], []
    for pid in server.workers():
        out = OUT / f"ask-flame-{server.name}-{pid}.svg"
        procs.append(
            subprocess.Popen(
                [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                 "--output", str(out), "--format", "flamegraph", "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        outputs.append(str(out))
    measure(server.target, key, clients, seconds, questions)
    for p in procs:
        p.wait(60)
    return [o for o in outputs if Path(o).exists()]


def run_ghz(
    server: ServerProcess, key: str, clients: int, seconds: float, questions: list[str]
) -> dict | None:
    """The same load from ghz (one connection per client), when ghz is installed."""
    ghz = shutil.which("ghz") or str(Path.home() / "go" / "bin" / "ghz")
    if not Path(ghz).exists():
        return None
    OUT.mkdir(parents=True, exist_ok=True)
    data = OUT / "ghz-questions.json"
    data.write_text(json.dumps([{"question": q, "k": 5} for q in questions], ensure_ascii=False))
    cmd = [
        ghz, "--insecure", "--proto", str(ROOT / "protos" / "kgqa" / "v1" / "qa.proto"),
        "--import-paths", str(ROOT / "protos"), "--call", "kgqa.v1.QAService/Ask",
        "--metadata", json.dumps({"authorization": f"Bearer {key}"}),
        "--data-file", str(data), "--concurrency", str(clients), "--connections", str(clients),
        "--duration", f"{int(seconds)}s", "--format", "json", server.target,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        return {"error": out.stderr[-500:]}
    report = json.loads(out.stdout)
    lat = {d["percentage"]: d["latency"] / 1e6 for d in report.get("latencyDistribution") or []}
    return {
        "clients": clients,
        "qps": round(report["rps"], 1),
        "p50_ms": round(lat.get(50, float("nan")), 2),
        "p99_ms": round(lat.get(99, float("nan")), 2),
        "status": report.get("statusCodeDistribution"),
    }


def _pids_of(server: ServerProcess, neo4j_pid: int | None) -> Callable[[], dict[str, list[int]]]:
    def pids() -> dict[str, list[int]]:
        out = {"server": server.pids(), "client": [os.getpid()]}
        if neo4j_pid is not None:
            out["neo4j"] = [neo4j_pid]
        return out

    return pids


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def build_stubs() -> None:
    """Make sure the gRPC stubs exist (idempotent, fast when up to date)."""
    subprocess.run([sys.executable, str(ROOT / "protos" / "build.py")], check=True, capture_output=True)


def cpu_seconds(pids: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    """User + system CPU seconds used so far by each process of each named group."""
    import psutil

    out: dict[str, dict[int, float]] = {}
    for name, group in pids.items():
        out[name] = {}
        for pid in group:
            with suppress(psutil.Error):
                t = psutil.Process(pid).cpu_times()
                out[name][pid] = t.user + t.system
    return out


def cpu_spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each group spent between two readings (processes seen in both: one that came
    or went meanwhile, a restarted worker, is left out rather than counted wrong)."""
    return {
        name: sum(after[name][pid] - t for pid, t in group.items() if pid in after.get(name, {}))
        for name, group in before.items()
    }


def run_phases(
    target: str,
    key: str,
    clients: list[int],
    seconds: float,
    questions: list[str],
    pids: Callable[[], dict[str, list[int]]] | None = None,
) -> list[dict]:
    """One warm-up, then a phase per client count; ``pids`` names the processes whose CPU per
    answer each phase reports (None: none)."""
    measure(target, key, max(clients), min(seconds, 5.0), questions)  # warm-up: every worker, caches
    phases = []
    for n in clients:
        groups = pids() if pids else {}
        before = cpu_seconds(groups)
        result = measure(target, key, n, seconds, questions)
        after = cpu_seconds(groups)
        if groups and result["requests"]:
            result["cpu_ms_per_answer"] = {
                name: round(spent * 1000 / result["requests"], 2)
                for name, spent in cpu_spent(before, after).items()
            }
        result["loadavg"] = loadavg()
        result.pop("answer_ids")
        phases.append(result)
    return phases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grpc-target", help="HOST:PORT of a running server (default: start our own)")
    ap.add_argument("--key", default=os.environ.get("KGQA_BENCH_KEY"), help="API key for --grpc-target")
    ap.add_argument("--uri", help="a Neo4j with the corpus ingested (default: our own, ingested here)")
    ap.add_argument("--home", type=Path, help="KGQA_HOME of --uri's index (default: a temporary one)")
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "cas-all")
    ap.add_argument("--configs", default="baseline,fast", help=f"comma list of {sorted(CONFIGS)}")
    ap.add_argument("--workers", type=int, default=2, help="server processes of the non-baseline configs")
    ap.add_argument("--clients", default="1,8,32", help="comma list of client counts, one phase each")
    ap.add_argument("--seconds", type=float, default=20.0, help="duration of each phase")
    ap.add_argument("--questions", choices=("short", "letters", "mixed"), default="mixed")
    ap.add_argument("--soak", type=float, help="seconds of an 8-client soak of the last config (RSS growth)")
    ap.add_argument("--profile", action="store_true", help="py-spy flame graphs into bench/out/")
    ap.add_argument("--ghz", action="store_true", help="also load with ghz when it is installed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from kgqa.logging import configure_logging

    configure_logging("WARNING")
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    build_stubs()
    questions = load_questions(args.questions)
    clients = [int(c) for c in args.clients.split(",")]
    results: dict = {"cpus": os.cpu_count(), "questions": f"{args.questions} ({len(questions)})", "runs": {}}
    with ExitStack() as stack:
        if args.grpc_target:
            if not args.key:
                raise SystemExit("--grpc-target needs --key (or KGQA_BENCH_KEY)")
            results["runs"]["target"] = {
                "phases": run_phases(args.grpc_target, args.key, clients, args.seconds, questions)
            }
        else:
            home = args.home or Path(tempfile.mkdtemp(prefix="kgqa-bench-ask-"))
            uri, neo4j_pid = prepare_graph(stack, args.uri, home, args.corpus)
            OUT.mkdir(parents=True, exist_ok=True)
            for name in args.configs.split(","):
                env = {"KGQA_NEO4J_URI": uri, "KGQA_HOME": str(home), **CONFIGS[name]}
                workers = int(env.get("KGQA_WORKERS", args.workers))
                server = start_server(name, env, workers, OUT)
                try:
                    run: dict = {"workers": workers, "env": CONFIGS[name]}
                    run["phases"] = run_phases(
                        server.target, KEY, clients, args.seconds, questions, _pids_of(server, neo4j_pid)
                    )
                    if args.profile:
                        run["flame_graphs"] = profile(server, KEY, args.seconds, questions, 8)
                    if args.ghz:
                        run["ghz"] = [
                            run_ghz(server, KEY, n, args.seconds, questions) for n in clients if n > 1
                        ]
                    if args.soak and name == args.configs.split(",")[-1]:
                        run["soak"] = soak(server, KEY, args.soak, questions)
                finally:
                    server.stop()
                results["runs"][name] = run
    if "baseline" in results["runs"]:
        base = {p["clients"]: p for p in results["runs"]["baseline"]["phases"]}
        for name, run in results["runs"].items():
            for p in run["phases"]:
                b = base.get(p["clients"])
                if b and name != "baseline":
                    p["vs_baseline"] = {
                        "qps": round(p["qps"] / b["qps"], 2) if b["qps"] else None,
                        "p50": round(p["p50_ms"] / b["p50_ms"], 2) if b["p50_ms"] else None,
                        "p99": round(p["p99_ms"] / b["p99_ms"], 2) if b["p99_ms"] else None,
                    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_ask.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print(
        f"Ask over gRPC, separate server process ({results['cpus']} CPUs, questions {results['questions']})"
    )
    for name, run in results["runs"].items():
        print(f"  {name} (workers {run.get('workers', '?')})")
        for r in run["phases"]:
            ratio = r.get("vs_baseline")
            print(
                f"    {r['clients']:3d} clients {r['requests']:6d} req {r['qps']:7.1f} QPS  p50 {r['p50_ms']:7.2f} ms"
                f"  p99 {r['p99_ms']:7.2f} ms  errors {r['errors'] or '-'}  load {r['loadavg']}"
                + (f"  refused in p99 {r['rejected_p99_ms']} ms" if r["rejected_p99_ms"] is not None else "")
                + (
                    f"  vs baseline QPS x{ratio['qps']} p50 x{ratio['p50']} p99 x{ratio['p99']}"
                    if ratio
                    else ""
                )
            )
            print(f"    {'':12s}in the service (mean ms): {r['server_mean_ms']}  by worker: {r['workers']}")
            if r.get("cpu_ms_per_answer"):
                print(f"    {'':12s}CPU ms per answer: {r['cpu_ms_per_answer']}")
        for g in run.get("ghz") or ():
            print(f"    ghz: {g}")
        if run.get("soak"):
            s = run["soak"]
            print(
                f"    soak: RSS growth {s['growth_pct_after_warmup']}% ({s['rss_mb'][0]} -> {s['rss_mb'][-1]} MB);"
                f" {s['load']['requests']} req, errors {s['load']['errors'] or '-'}"
            )
        if run.get("flame_graphs"):
            print(f"    flame graphs: {run['flame_graphs']}")


if __name__ == "__main__":
    main()
