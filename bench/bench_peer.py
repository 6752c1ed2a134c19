"""Side by side with a peer: neo4j-graphrag's HybridRetriever against our whole Ask.

On the same Neo4j, graph and questions:

- **theirs**: ``neo4j_graphrag.retrievers.HybridRetriever`` (vector + full-text indexes over the
  same clauses, created with the library's own ``create_vector_index`` / ``create_fulltext_index``,
  fused by its naive ranker), with our bge-small-zh encoder behind its ``Embedder`` interface.
  The clauses are copied onto ``:PeerClause`` nodes (the text our index embeds, our vectors) so
  that nothing is added to our ``Clause`` nodes; they are removed at the end (``--keep`` keeps them).
- **ours**: ``QAService.ask`` as ``kgqa serve`` builds it (retrieval, generation with the extractive
  backend, verification and the audit record), in this same process, so that both pay the same
  Python and the same machine. An Ask reads nothing from Neo4j in the common case (its full-text
  ranking runs in process too, serving/retrieval/phrases.py).

Both run with 1 and 8 client threads; it prints p50/p99/QPS of each and the ratio ours/theirs. The
issue's bar: our whole Ask no slower than their retrieval alone.

    .venv/bin/python bench/bench_peer.py [--uri bolt://... --home $KGQA_HOME] [--questions mixed]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_ask import (  # noqa: E402
    OUT,
    SHARED,
    load_questions,
    loadavg,
    percentile,
    prepare_graph,
    run_clients,
)

VECTOR_INDEX = "peer_clause_vector"
FULLTEXT_INDEX = "peer_clause_text"

_LUCENE_SPECIAL = re.compile(r'([+\-!(){}\[\]^"~*?:\\/]|&&|\|\|)')


def escape_lucene(text: str) -> str:
    """The question as literal Lucene text: the library passes it to the full-text index as query
    syntax, and a letter's parentheses or quotes would be a parse error there."""
    cleaned = _LUCENE_SPECIAL.sub(r"\\\1", text)
    return re.sub(r"\b(AND|OR|NOT)\b", lambda m: m.group(1).lower(), cleaned)


def run_peer_clients(fn: Callable[[str], object], questions: list[str], clients: int, seconds: float) -> dict:
    """Call ``fn(question)`` from ``clients`` threads for ``seconds``; latency and throughput."""
    latencies, errors, wall = run_clients(lambda: nullcontext(fn), questions, clients, seconds)
    return {
        "clients": clients,
        "requests": len(latencies),
        "qps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else float("nan"),
        "errors": errors,
        "loadavg": loadavg(),
    }


def build_peer(driver, index, encoder):
    """The peer's copy of the clauses and its two indexes; its retriever with our encoder."""
    from neo4j_graphrag.embeddings.base import Embedder
    from neo4j_graphrag.indexes import create_fulltext_index, create_vector_index, drop_index_if_exists
    from neo4j_graphrag.retrievers import HybridRetriever

    from kg import queries as q

    class BgeEmbedder(Embedder):
        """Our bge-small-zh (int8 ONNX) behind neo4j-graphrag's Embedder interface."""

        def embed_query(self, text: str) -> list[float]:
            return encoder.encode_queries([text])[0].tolist()

    rows = [
        {"clause_id": u.clause_id, "text": u.text, "embedding": index.vectors[i].tolist()}
        for i, u in enumerate(index.units)
        if u.chunk < 0
    ]
    driver.execute_query(q.PEER_CLAUSES_DROP)
    for i in range(0, len(rows), 500):
        driver.execute_query(q.PEER_CLAUSES_UPSERT, rows=rows[i : i + 500])
    for name in (VECTOR_INDEX, FULLTEXT_INDEX):
        drop_index_if_exists(driver, name)
    create_vector_index(driver, VECTOR_INDEX, "PeerClause", "embedding", encoder.dim, "cosine")
    create_fulltext_index(driver, FULLTEXT_INDEX, "PeerClause", ["text"])
    driver.execute_query(q.AWAIT_INDEXES)
    retriever = HybridRetriever(
        driver, VECTOR_INDEX, FULLTEXT_INDEX, BgeEmbedder(), return_properties=["clause_id", "text"]
    )
    return retriever, len(rows)


def drop_peer(driver) -> None:
    from neo4j_graphrag.indexes import drop_index_if_exists

    from kg import queries as q

    for name in (VECTOR_INDEX, FULLTEXT_INDEX):
        drop_index_if_exists(driver, name)
    driver.execute_query(q.PEER_CLAUSES_DROP)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", help="a Neo4j with the corpus ingested (default: our own, ingested here)")
    ap.add_argument("--home", type=Path, help="KGQA_HOME of --uri's index (default: a temporary one)")
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus" / "cas-all")
    ap.add_argument("--questions", choices=("short", "letters", "mixed"), default="mixed")
    ap.add_argument("--clients", default="1,8")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--keep", action="store_true", help="keep the :PeerClause copy and its indexes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from neo4j import GraphDatabase

    from kgqa.logging import configure_logging
    from kgqa.settings import Settings
    from kgqa.wiring import build_graph, build_qa_service, build_retriever, limit_native_threads
    from serving.types import Caller, Role

    configure_logging("WARNING")
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    logging.getLogger("neo4j_graphrag").setLevel(logging.WARNING)
    questions = load_questions(args.questions)
    clients = [int(c) for c in args.clients.split(",")]
    results: dict = {"questions": f"{args.questions} ({len(questions)})", "cpus": os.cpu_count()}
    with ExitStack() as stack:
        home = args.home or Path(tempfile.mkdtemp(prefix="kgqa-bench-peer-"))
        uri, _ = prepare_graph(stack, args.uri, home, args.corpus)
        settings = Settings(neo4j_uri=uri, home=home, audit_journal_dir=home / "audit" / "bench-peer")
        limit_native_threads(settings)
        driver = stack.enter_context(GraphDatabase.driver(uri))
        graph = build_graph(settings, driver)
        hybrid = build_retriever(settings, graph)
        service = build_qa_service(settings, graph, retriever=hybrid)
        stack.callback(service.close)
        store = hybrid.store
        retriever, peer_clauses = build_peer(driver, store.current(), store.encoder)
        if not args.keep:
            stack.callback(drop_peer, driver)
        results["peer_clauses"] = peer_clauses
        caller = Caller("bench-peer", Role.READER)

        def theirs(question: str) -> None:
            # the raw question for the embedding; escaped for Lucene, which the library does not do
            vector = retriever.embedder.embed_query(question)
            retriever.search(query_text=escape_lucene(question), query_vector=vector, top_k=5)

        def ours(question: str) -> None:
            service.ask(question, 5, caller)

        for fn in (theirs, ours):  # warm-up: caches, connections, lazy imports
            run_peer_clients(fn, questions, 2, 3.0)
        for name, fn in (("theirs (HybridRetriever, retrieval only)", theirs), ("ours (whole Ask)", ours)):
            results[name] = [run_peer_clients(fn, questions, n, args.seconds) for n in clients]
    theirs_runs = results["theirs (HybridRetriever, retrieval only)"]
    results["ratio_ours_over_theirs"] = [
        {
            "ours": name.removeprefix("ours "),
            "clients": x["clients"],
            "p50": round(x["p50_ms"] / y["p50_ms"], 2),
            "p99": round(x["p99_ms"] / y["p99_ms"], 2),
            "qps": round(x["qps"] / y["qps"], 2),
        }
        for name in ("ours (whole Ask)",)
        for x, y in zip(results[name], theirs_runs, strict=True)
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_peer.json").write_text(json.dumps(results, ensure_ascii=False, indent=2))
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    print(
        f"Peer comparison ({results['cpus']} CPUs, questions {results['questions']}, {peer_clauses} clauses)"
    )
    for name in ("theirs (HybridRetriever, retrieval only)", "ours (whole Ask)"):
        print(f"  {name}")
        for r in results[name]:
            print(
                f"    {r['clients']:2d} clients {r['requests']:6d} req {r['qps']:7.1f} QPS  p50 {r['p50_ms']:7.2f} ms"
                f"  p99 {r['p99_ms']:7.2f} ms  errors {r['errors'] or '-'}  load {r['loadavg']}"
            )
    for r in results["ratio_ours_over_theirs"]:
        print(
            f"  ours {r['ours']} / theirs at {r['clients']} clients: p50 x{r['p50']}  p99 x{r['p99']}"
            f"  QPS x{r['qps']}"
        )


if __name__ == "__main__":
    main()
