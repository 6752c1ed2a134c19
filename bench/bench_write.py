"""Triples/second written to Neo4j: batched UNWIND (production setting) vs one row per statement.

Starts its own Neo4j (own data dir and free port) unless --uri is given, builds synthetic clause
trees shaped like the corpus (clauses with ~6 triples each), writes them with both batch sizes on
an emptied graph, and prints figures plus the ratio. Usage:

    .venv/bin/python bench/bench_write.py [--clauses 2000] [--triples-per-clause 6] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import tempfile
import time
from pathlib import Path

from neo4j import GraphDatabase

from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg.local_server import LocalNeo4j
from kg.types import EntityRecord, Extraction, TripleRecord
from kg.writer import GraphWriter


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def make_tree(doc_id: str, n_clauses: int, per_clause: int) -> tuple[DocumentTree, Extraction]:
    sections = [SectionNode(f"{doc_id}/第{i}章", f"第{i}章", f"章{i}", 1, i, None) for i in range(1, 11)]
    clauses, triples = [], []
    for i in range(1, n_clauses + 1):
        text = (
            f"第{i}条 项目部应当在收到计量报告后{i % 30 + 1}日内完成审核，单笔超过{i}万元的付款须经总经理审批。"
            * 3
        )
        cid = f"{doc_id}/第{i}条"
        clauses.append(
            ClauseNode(
                cid, f"第{i}条", i, text, i // 3 + 1, i // 3 + 1, sections[i % 10].section_id, _sha(text)
            )
        )
        for j in range(per_clause):
            triples.append(
                TripleRecord(
                    _sha(f"{cid}|{j}")[:16],
                    cid,
                    "项目部",
                    "期限",
                    f"{j}日",
                    {"surface": f"{j}日"},
                    subject_entity="party:项目部",
                )
            )
    tree = DocumentTree(
        doc_id,
        doc_id,
        "md",
        Path(f"/bench/{doc_id}.md"),
        _sha(doc_id),
        n_clauses // 3,
        0,
        sections,
        clauses,
        [],
    )
    extraction = Extraction(
        triples,
        [EntityRecord("party:项目部", "项目部", "party")],
        [],
        [(c.clause_id, "party:项目部") for c in clauses],
    )
    return tree, extraction


def run(uri: str, n_clauses: int, per_clause: int) -> dict:
    results = {}
    with GraphDatabase.driver(uri, auth=None) as driver:
        for label, batch in (("row-per-statement (baseline)", 1), ("batched UNWIND 500", 500)):
            with driver.session() as s:
                s.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
            writer = GraphWriter(driver, batch_size=batch)
            writer.ensure_schema()
            tree, extraction = make_tree(f"BENCH-{batch}", n_clauses, per_clause)
            t0 = time.perf_counter()
            writer.write_document(tree, extraction)
            dt = time.perf_counter() - t0
            results[label] = {
                "seconds": round(dt, 3),
                "triples_per_s": round(len(extraction.triples) / dt, 1),
                "clauses_per_s": round(n_clauses / dt, 1),
            }
    base = results["row-per-statement (baseline)"]["triples_per_s"]
    results["speedup"] = round(results["batched UNWIND 500"]["triples_per_s"] / base, 2)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--uri", help="an existing Neo4j to use (it will be EMPTIED); default: start our own")
    ap.add_argument("--clauses", type=int, default=2000)
    ap.add_argument("--triples-per-clause", type=int, default=6)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    server = None
    uri = args.uri
    if uri is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = LocalNeo4j(Path(tempfile.mkdtemp(prefix="kgqa-bench-")), port)
        server.start()
        uri = server.bolt_uri
    try:
        results = run(uri, args.clauses, args.triples_per_clause)
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
        return
    total = args.clauses * args.triples_per_clause
    print(f"write {args.clauses} clauses / {total} triples to Neo4j")
    for label, r in results.items():
        if isinstance(r, dict):
            print(
                f"  {label:32s} {r['seconds']:8.2f} s  {r['triples_per_s']:10.1f} triples/s  {r['clauses_per_s']:8.1f} clauses/s"
            )
    print(f"  speedup of batching: x{results['speedup']}")


if __name__ == "__main__":
    main()
