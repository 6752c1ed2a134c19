"""Server time of each web-console page with the 42 accounting standards loaded.

Self-contained: starts its own Neo4j (own data dir, free port), ingests ``../shared/corpus/cas-all``,
builds the real QAService (extractive backend), asks ten questions and fills the audit trail with
copies of their records up to ``--answers`` (hash-chained like any answer),
registers two models and records 30 finished retrain jobs, starts ``start_servers`` on free ports (with
the edit and job services) and signs in as an admin (who may open every page, the editor's Edit pages
included). Each page is then fetched
``--repeat`` times (the Edit page's "Check" is posted as often); the figure is the server's own
``Server-Timing: app;dur=…`` (routing, the service calls, the graph reads and the template, until the
response starts), with the client's round trip beside it. Target: every page under 300 ms.

    .venv/bin/python bench/bench_console.py [--repeat 20] [--answers 1000] [--keep DIR] [--json]

``--keep DIR`` keeps the Neo4j data and KGQA_HOME there, so a second run skips the ingestion.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ask import percentile  # noqa: E402

from kg.local_server import free_port  # noqa: E402

CORPUS = Path(os.environ.get("KGQA_SHARED_DIR", ROOT.parent / "shared")) / "corpus" / "cas-all"
ADMIN_KEY = "bench-console-admin-key"
QUESTIONS = (
    "存货应当按照什么进行初始计量？",
    "存货的采购成本包括哪些费用？",
    "固定资产同时满足哪些条件才能予以确认？",
    "固定资产的折旧方法有哪些？",
    "无形资产的使用寿命如何确定？",
    "投资性房地产的后续计量模式有哪些？",
    "借款费用资本化的条件是什么？",
    "或有事项确认为预计负债应当同时满足哪些条件？",
    "收入确认的五步法是什么？",
    "政府补助分为哪两类？",
)
TARGET_MS = 300.0


def _server_ms(response: httpx.Response) -> float:
    match = re.search(r"dur=([\d.]+)", response.headers.get("server-timing", ""))
    if match is None:
        raise RuntimeError(f"{response.request.url}: no Server-Timing header (status {response.status_code})")
    return float(match.group(1))


def _timed(request: Callable[[], httpx.Response], repeat: int) -> dict[str, float]:
    """Server and client time of ``request`` made ``repeat + 1`` times; the first warms caches and
    is not counted."""
    server, wall = [], []
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        response = request()
        wall.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise SystemExit(
                f"{response.request.method} {response.request.url}: {response.status_code} {response.text[:300]}"
            )
        server.append(_server_ms(response))
    server, wall = server[1:], wall[1:]
    return {
        "server_p50_ms": round(statistics.median(server), 1),
        "server_p95_ms": round(percentile(server, 0.95), 1),
        "client_p50_ms": round(statistics.median(wall), 1),
    }


def _sign_in(client: httpx.Client) -> str:
    form = client.get("/console/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', form).group(1)
    response = client.post("/console/login", data={"api_key": ADMIN_KEY, "login_token": token})
    assert response.status_code == 303, response.text
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/console/ask").text).group(1)


def _fill_trail(driver, answers, total: int) -> None:
    """Append copies of the real answers (new ids, five actors) until the trail holds ``total``."""
    import uuid
    from datetime import UTC, datetime

    from kg.audit import AuditCitation, AuditEntry, AuditStore

    audit = AuditStore(driver)
    have = driver.execute_query("MATCH (a:Answer) RETURN count(a) AS n").records[0]["n"]
    for i in range(max(0, total - have)):
        a = answers[i % len(answers)]
        audit.append(
            AuditEntry(
                answer_id=str(uuid.uuid4()),
                question=a.question,
                answer=a.text,
                status=a.status.value,
                model_id=a.model_id,
                graph_version=None,
                at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                actor=f"key-bench-{i % 5}",
                citations=[
                    AuditCitation(
                        c.clause_id,
                        c.clause_version,
                        c.quote,
                        c.quote_start,
                        c.quote_end,
                        c.support_score,
                        c.verified,
                    )
                    for c in a.citations
                ],
            )
        )


def _setup(work: Path, trail: int):
    from neo4j import GraphDatabase

    from kg.jobs import JobState, JobStore
    from kg.local_server import LocalNeo4j
    from kg.registry import ModelRegistry, ModelVersion
    from kgqa.settings import Settings
    from kgqa.wiring import build_edit_service, build_ingest_service, build_jobs_service, build_qa_service
    from serving.auth import KeyRing
    from serving.server import start_servers
    from serving.types import Caller, Role

    port_file = work / "bolt_port"
    port = int(port_file.read_text()) if port_file.is_file() else free_port()
    port_file.write_text(str(port))
    neo4j = LocalNeo4j(work / "neo4j", port, heap_mb=1024, pagecache_mb=256)
    neo4j.start(timeout=300)
    driver = GraphDatabase.driver(neo4j.bolt_uri, auth=None)
    settings = Settings(neo4j_uri=neo4j.bolt_uri, home=work / "home")
    started = time.perf_counter()
    report = build_ingest_service(settings, driver).ingest([CORPUS])
    if not report.ok:
        raise SystemExit(f"ingestion failed: {report.failed}")
    ingest_s = time.perf_counter() - started
    service = build_qa_service(settings, driver)
    caller = Caller("key-bench", Role.ADMIN)
    answers = [service.ask(q, None, caller) for q in QUESTIONS]
    _fill_trail(driver, answers, trail)
    registry = ModelRegistry(driver)
    metrics = {"eval:test_unseen": {"key_fact_accuracy": 0.41, "token_f1": 0.5, "composite": 0.55}}
    registry.register(
        ModelVersion("sft-bench-1", "sft", "/models/base", "/runs/sft", 1, "abc", None, metrics)
    )
    registry.register(
        ModelVersion("grpo-bench-1", "grpo", "/models/base", "/runs/grpo", 1, "abc", "sft-bench-1", metrics)
    )
    store = JobStore(driver)
    for _ in range(30):  # what the Jobs pages list and show: ended retrains with their six stages
        job = store.create("retrain", params={"since": 1}, since_graph_version=1, actor="key-bench")
        history = [
            {"stage": stage, "event": event, "at": job.created_at, "pid": 1}
            for stage in ("delta", "dataset", "train", "evaluate", "register", "activate")
            for event in ("started", "finished")
        ]
        store.update(job.job_id, state=JobState.CANCELLED, stage="train", progress=0.4, history=history)
    keyring = KeyRing([(ADMIN_KEY, Role.ADMIN)])
    running = start_servers(
        service, keyring, grpc_port=0, http_port=0, grace=1.0, health_interval_s=1.0,
        edits=build_edit_service(settings, driver), jobs=build_jobs_service(settings, driver),
    )  # fmt: skip
    return neo4j, driver, running, answers, ingest_s, job.job_id


def _pages(answers, documents, job_id: str) -> dict[str, str]:
    cited = next((a for a in answers if a.citations), answers[0])
    clause = cited.citations[0].clause_id if cited.citations else ""
    biggest = max(documents, key=lambda d: d.clauses)
    return {
        "ask (form)": "/console/ask",
        "graph: documents": "/console/graph",
        f"graph: outline of the largest document ({biggest.clauses} clauses)": f"/console/graph/document?id={quote(biggest.doc_id)}",
        "graph: clause (history, citing answers)": f"/console/graph/clause?id={quote(clause)}",
        "edit: clause form": f"/console/edit/clause?id={quote(clause)}",
        "audit: list": "/console/audit",
        "audit: filtered by cited clause": f"/console/audit?clause_id={quote(clause)}&status=VERIFIED",
        f"audit: answer trace ({len(cited.citations)} citations)": f"/console/audit/answers/{cited.answer_id}",
        "audit: chain check page, no script (one step, then it refreshes)": "/console/audit/chain",
        "audit: CSV export": "/console/audit/export.csv",
        "models: list": "/console/models",
        "models: compare": "/console/models/compare",
        "jobs: list and start form (30 jobs)": "/console/jobs",
        "jobs: job page (stage history)": f"/console/jobs/{job_id}",
        "jobs: status fragment (polled each second)": f"/console/jobs/{job_id}/status",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="keep Neo4j and KGQA_HOME here")
    parser.add_argument("--answers", type=int, default=1000, help="answers in the audit trail")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"corpus not found at {CORPUS} (set KGQA_SHARED_DIR)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="kgqa-bench-console-"))
    work.mkdir(parents=True, exist_ok=True)
    neo4j, driver, running, answers, ingest_s, job_id = _setup(work, args.answers)
    results = []
    try:
        from serving.types import Caller, Role

        documents = running.http.config.app.state.service.list_documents(Caller("key-bench", Role.READER))
        with httpx.Client(base_url=f"http://127.0.0.1:{running.http_port}", timeout=60) as client:
            csrf = _sign_in(client)
            for name, path in _pages(answers, documents, job_id).items():
                results.append(
                    {"page": name, "path": path, **_timed(lambda p=path: client.get(p), args.repeat)}
                )
            # The page's chain check: one step per request (the first; each later one is alike)
            step = running.http.config.app.state.console.config.chain_step
            results.append(
                {
                    "page": f"audit: chain check, one step of {step} records (htmx)",
                    "path": "GET /console/audit/chain (HX-Request)",
                    **_timed(
                        lambda: client.get("/console/audit/chain", headers={"HX-Request": "true"}),
                        args.repeat,
                    ),
                }
            )
            # The Edit page's "Check" (htmx post): the diff and the impact of a proposed text
            clause = next(a for a in answers if a.citations).citations[0].clause_id
            view = running.http.config.app.state.service.get_clause(
                clause, None, Caller("key-bench", Role.READER)
            )
            form = {
                "csrf_token": csrf, "clause_id": clause, "text": view.text + "（修订）",
                "expected_version": str(view.version),
            }  # fmt: skip
            results.append(
                {
                    "page": "edit: check a clause edit (diff, impact)",
                    "path": "POST /console/edit/clause/check",
                    **_timed(
                        lambda: client.post(
                            "/console/edit/clause/check", data=form, headers={"HX-Request": "true"}
                        ),
                        args.repeat,
                    ),
                }
            )
            # Ask through the console (form post, answered in full): the answer pipeline, not a page
            server = []
            for q in QUESTIONS:
                response = client.post("/console/ask", data={"question": q, "csrf_token": csrf})
                server.append(_server_ms(response))
            results.append(
                {
                    "page": "ask: answer a question (retrieval, generation, verification, audit write)",
                    "path": "POST /console/ask",
                    "server_p50_ms": round(statistics.median(server), 1),
                    "server_p95_ms": round(sorted(server)[int(0.95 * (len(server) - 1))], 1),
                    "client_p50_ms": None,
                }
            )
    finally:
        running.stop(grace=1.0)
        driver.close()
        neo4j.stop()
    summary = {
        "documents": len(documents),
        "clauses": sum(d.clauses for d in documents),
        "answers_in_trail": max(args.answers, len(QUESTIONS)),
        "ingest_s": round(ingest_s, 1),
        "repeat": args.repeat,
        "pages": results,
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    print(
        f"{summary['documents']} documents, {summary['clauses']} clauses, "
        f"{summary['answers_in_trail']} answers in the trail; {args.repeat} fetches per page"
    )
    print(f"{'page':<62} {'server p50':>10} {'p95':>8} {'client p50':>11}")
    for r in results:
        flag = "" if r["server_p95_ms"] < TARGET_MS else "  over target"
        client = f"{r['client_p50_ms']:.1f}" if r["client_p50_ms"] is not None else "-"
        print(f"{r['page']:<62} {r['server_p50_ms']:>10.1f} {r['server_p95_ms']:>8.1f} {client:>11}{flag}")


if __name__ == "__main__":
    main()
