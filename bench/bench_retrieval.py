"""Retrieval quality and latency on eval/questions.jsonl: each retriever alone and the fusion.

Starts its own Neo4j (own data dir and free port) unless --uri is given, ingests the Markdown
laws and standards of the shared corpus (../shared/corpus; skipped with a message when absent),
builds the retrieval index (with the dense index, so that it can be measured) and prints, per
retriever: document-level and article-level hit@1 / hit@5 and MRR@50 over the answerable
questions; for the fusion also the share of unanswerable questions that got no evidence, the
share of answerable ones wrongly refused, and the latency of ``retrieve(question, 5)``. Usage:

    .venv/bin/python bench/bench_retrieval.py [--json] [--uri bolt://... --no-ingest]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from neo4j import GraphDatabase

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "eval" / "questions.jsonl"


def _shared_corpus() -> Path:
    return Path(os.environ.get("KGQA_SHARED_DIR", REPO.parent / "shared")) / "corpus"


def load_questions(path: Path = QUESTIONS) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _doc_of(clause_id: str) -> str:
    return clause_id.rsplit("/", 1)[0]


def score_ranking(ranking: Sequence[str], gold: Sequence[str]) -> dict[str, float]:
    """hit@1/hit@5 at document and article level, and the reciprocal rank of the first gold clause."""
    gold_set, gold_docs = set(gold), {_doc_of(g) for g in gold}
    docs = [_doc_of(c) for c in ranking]
    rr = next((1.0 / i for i, c in enumerate(ranking, 1) if c in gold_set), 0.0)
    return {
        "doc_hit@1": float(bool(docs[:1]) and docs[0] in gold_docs),
        "doc_hit@5": float(any(d in gold_docs for d in docs[:5])),
        "hit@1": float(bool(ranking[:1]) and ranking[0] in gold_set),
        "hit@5": float(any(c in gold_set for c in ranking[:5])),
        "mrr": rr,
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.fmean(r[k] for r in rows), 3) for k in rows[0]} if rows else {}


def evaluate(retrievers: dict, questions: list[dict]) -> dict:
    """Scores of every single retriever (from the default hybrid's rankings) and of each fusion."""
    answerable = [q for q in questions if q["gold"]]
    unanswerable = [q for q in questions if not q["gold"]]
    main = retrievers["fusion"]
    singles: dict[str, list[dict[str, float]]] = {}
    for q in answerable:
        ranked = main.rank(q["question"], expand=False)
        for name in ("bm25", "dense", "fulltext", "direct"):
            if name in ranked.rankings:
                singles.setdefault(name, []).append(score_ranking(ranked.rankings[name], q["gold"]))
    results: dict = {name: _mean(rows) for name, rows in singles.items()}
    for label, retriever in retrievers.items():
        rows, refused, latencies = [], 0, []
        for q in answerable:
            ranked = retriever.rank(q["question"])
            order = [f.clause_id for f in ranked.fused] if ranked.evidence else []
            refused += not ranked.evidence
            rows.append(score_ranking(order, q["gold"]))
        abstained = sum(not retriever.rank(q["question"]).evidence for q in unanswerable)
        for q in questions:
            t0 = time.perf_counter()
            retriever.retrieve(q["question"], 5)
            latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        results[label] = {
            **_mean(rows),
            "unanswerable_no_evidence": round(abstained / len(unanswerable), 3) if unanswerable else None,
            "answerable_refused": round(refused / len(answerable), 3),
            "latency_ms_p50": round(statistics.median(latencies), 1),
            "latency_ms_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        }
    by_kind: dict[str, list[dict[str, float]]] = {}
    for q in answerable:
        ranked = main.rank(q["question"])
        order = [f.clause_id for f in ranked.fused] if ranked.evidence else []
        by_kind.setdefault(q["kind"], []).append(score_ranking(order, q["gold"]))
    return {
        "questions": len(questions),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "retrievers": results,
        "fusion_by_kind": {k: {"n": len(v), **_mean(v)} for k, v in sorted(by_kind.items())},
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(uri: str, home: Path, *, ingest: bool, dense: bool, dense_weight: float) -> dict:
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service
    from serving.retrieval import HybridRetriever, IndexStore, RetrievalConfig

    with GraphDatabase.driver(uri, auth=None, notifications_min_severity="OFF") as driver:
        timings = {}
        if ingest:
            corpus = _shared_corpus()
            files = sorted((corpus / "laws").glob("*.md")) + sorted((corpus / "standards").glob("*.md"))
            t0 = time.perf_counter()
            report = build_ingest_service(Settings(neo4j_uri=uri), driver).ingest(files)
            if not report.ok:
                raise SystemExit(f"ingestion failed: {report.failed}")
            timings["ingest_s"] = round(time.perf_counter() - t0, 1)
        config = RetrievalConfig(build_dense=dense, stale_check_s=0)
        store = IndexStore(home, driver, config)
        build = store.update()  # = rebuild on a fresh home; reuses embeddings with --home
        timings["index_build_s"] = build.seconds
        retrievers = {"fusion": HybridRetriever(store, driver)}
        if dense:
            weights = dict(config.weights, dense=dense_weight)
            retrievers[f"fusion+dense({dense_weight:g})"] = HybridRetriever(
                store, driver, RetrievalConfig(weights=weights, build_dense=True, stale_check_s=0)
            )
        retrievers["fusion-no-graph"] = HybridRetriever(
            store, driver, RetrievalConfig(weights=dict(config.weights, graph=0.0), stale_check_s=0)
        )
        result = evaluate(retrievers, load_questions())
        result["index"] = {
            "units": build.units,
            "clauses": build.clauses,
            "documents": build.documents,
            **timings,
        }
        return result


def print_table(result: dict) -> None:
    print(
        f"retrieval on {result['questions']} questions ({result['answerable']} answerable, "
        f"{result['unanswerable']} unanswerable); index: {result['index']}"
    )
    head = f"{'retriever':24s} {'doc@1':>6s} {'doc@5':>6s} {'art@1':>6s} {'art@5':>6s} {'MRR':>6s}"
    print(head + f" {'no-evid(unans)':>15s} {'refused(ans)':>13s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, r in result["retrievers"].items():
        line = (
            f"{name:24s} {r['doc_hit@1']:6.3f} {r['doc_hit@5']:6.3f} {r['hit@1']:6.3f} "
            f"{r['hit@5']:6.3f} {r['mrr']:6.3f}"
        )
        if "latency_ms_p50" in r:
            line += (
                f" {r['unanswerable_no_evidence']:15.3f} {r['answerable_refused']:13.3f}"
                f" {r['latency_ms_p50']:8.1f} {r['latency_ms_p95']:8.1f}"
            )
        print(line)
    print("fusion by question kind:")
    for kind, r in result["fusion_by_kind"].items():
        print(f"  {kind:14s} n={r['n']:3d} art@1={r['hit@1']:.3f} art@5={r['hit@5']:.3f} mrr={r['mrr']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uri", help="an existing Neo4j to use (corpus ingested into it unless --no-ingest)")
    ap.add_argument("--no-ingest", action="store_true", help="the graph at --uri already holds the corpus")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense index (faster)")
    ap.add_argument("--dense-weight", type=float, default=0.3, help="dense weight of the extra fusion row")
    ap.add_argument("--home", type=Path, help="keep the index (and its embedding cache) here between runs")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from kgqa.logging import configure_logging

    configure_logging("WARNING")  # stdout carries the table or the JSON only
    if not args.no_ingest and not (_shared_corpus() / "laws").is_dir():
        print(f"shared corpus not found at {_shared_corpus()} (set KGQA_SHARED_DIR); nothing to measure")
        sys.exit(0)
    from kg.local_server import LocalNeo4j

    server = None
    uri = args.uri
    work = Path(tempfile.mkdtemp(prefix="kgqa-bench-retrieval-"))
    if uri is None:
        server = LocalNeo4j(work / "neo4j", _free_port(), heap_mb=768, pagecache_mb=128)
        server.start(timeout=240)
        uri = server.bolt_uri
    try:
        result = run(
            uri,
            args.home or work / "home",
            ingest=not args.no_ingest,
            dense=not args.no_dense,
            dense_weight=args.dense_weight,
        )
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
