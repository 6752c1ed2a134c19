"""Embedding cost of bge-small-zh-v1.5 (ONNX): per query, per clause, and a whole index build.

1. Encoder: for each variant (int8, fp32) and intra-op thread count, the mean milliseconds to
   encode one short question (``encode_queries``, one at a time, as serving does; the questions of
   ``eval/questions.jsonl``) and one clause-length passage (``encode`` in batches of each
   ``--batch-sizes``; clause texts of the shared corpus' accounting standards exactly as the
   index embeds them: title, number and text, cut at ``embed_chars``). Models are extracted
   from the local Maven repository into a temporary folder (``make install`` / ``kgqa models
   fetch`` put the jars there; fp32 needs ``kgqa models fetch bge-small-zh --variant fp32``).
2. Index build: starts its own Neo4j (own data dir, free port) unless ``--uri`` is given,
   ingests the Markdown files of ``../shared/corpus/cas-all`` and times ``IndexStore.rebuild()``
   with dense on (every unit embedded afresh) for each ``--index-threads``.

Usage:

    .venv/bin/python bench/bench_embed.py [--json] [--variants int8,fp32] [--threads 1,2]
        [--batch-sizes 1,4,32] [--index-threads 1,2] [--no-index] [--uri bolt://... --no-ingest]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kg.local_server import free_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _shared_corpus() -> Path:
    return Path(os.environ.get("KGQA_SHARED_DIR", ROOT.parent / "shared")) / "corpus"


def cas_files() -> list[Path]:
    return sorted((_shared_corpus() / "cas-all").glob("*.md"))


def clause_passages(files: list[Path], limit: int, embed_chars: int) -> list[str]:
    """Clause texts as the index embeds them, spread evenly over the standards (no Neo4j needed)."""
    from ingest.pipeline import IngestPipeline
    from kgqa.settings import Settings
    from serving.retrieval.index import unit_text

    pipeline = IngestPipeline(Settings().ingest)
    texts = []
    for path in files:
        tree = pipeline.process(path)
        texts += [unit_text(tree.title, c.number, c.text)[:embed_chars] for c in tree.clauses]
    step = max(1, len(texts) // limit)
    return texts[::step][:limit]


def encoder_figures(
    variants: list[str], threads: list[int], batch_sizes: list[int], queries: list[str], passages: list[str]
) -> list[dict]:
    from serving.retrieval.encoders import OnnxEncoder
    from serving.retrieval.model_files import artifact, ensure_model

    rows = []
    with tempfile.TemporaryDirectory(prefix="kgqa-bench-embed-") as tmp:
        for variant in variants:
            art = artifact("bge-small-zh", variant)
            try:
                folder = ensure_model(Path(tmp), art)
            except Exception as exc:  # noqa: BLE001 - a missing fp32 jar is reported, not fatal
                rows.append({"variant": variant, "skipped": str(exc)})
                continue
            for n in threads:
                encoder = OnnxEncoder(folder, threads=n)
                encoder.encode_queries(queries[:3])  # warm-up: first runs allocate
                t0 = time.perf_counter()
                for q in queries:
                    encoder.encode_queries([q])
                row = {
                    "variant": variant,
                    "threads": n,
                    "model_mb": round((folder / "model.onnx").stat().st_size / 2**20, 1),
                    "ms_per_query": round((time.perf_counter() - t0) * 1000 / len(queries), 1),
                    "ms_per_clause": {},
                    "queries": len(queries),
                    "clauses": len(passages),
                    "mean_clause_chars": round(statistics.fmean(len(p) for p in passages)),
                }
                for size in batch_sizes:
                    encoder = OnnxEncoder(folder, threads=n, batch_size=size)
                    t0 = time.perf_counter()
                    encoder.encode(passages)
                    row["ms_per_clause"][size] = round((time.perf_counter() - t0) * 1000 / len(passages), 1)
                rows.append(row)
    return rows


def index_figures(uri: str, home: Path, *, ingest: bool, threads: list[int]) -> dict:
    from neo4j import GraphDatabase

    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service
    from serving.retrieval import IndexStore, RetrievalConfig

    result: dict = {"builds": []}
    with GraphDatabase.driver(uri, auth=None, notifications_min_severity="OFF") as driver:
        if ingest:
            files = cas_files()
            t0 = time.perf_counter()
            report = build_ingest_service(Settings(neo4j_uri=uri), driver).ingest(files)
            if not report.ok:
                raise SystemExit(f"ingestion failed: {report.failed}")
            result["files"] = len(files)
            result["ingest_s"] = round(time.perf_counter() - t0, 1)
        bm25_only = IndexStore(home / "bm25", driver, RetrievalConfig(stale_check_s=0)).rebuild()
        result["bm25_only_s"] = bm25_only.seconds
        for n in threads:
            config = RetrievalConfig(build_dense=True, embedding_threads=n, stale_check_s=0)
            build = IndexStore(home / f"dense-{n}", driver, config).rebuild()
            result["builds"].append(
                {
                    "threads": n,
                    "seconds": build.seconds,
                    "units": build.units,
                    "embedded": build.embedded,
                    "clauses": build.clauses,
                    "documents": build.documents,
                }
            )
    return result


def print_report(result: dict) -> None:
    print(f"command: {result['command']}")
    print(f"machine: {result['cpus']} CPUs, load average {result['load']}")
    rows = [r for r in result["encoder"] if "skipped" not in r]
    sizes = list(rows[0]["ms_per_clause"]) if rows else []
    head = f"{'variant':8s} {'threads':>7s} {'MB':>6s} {'ms/query':>9s}"
    print(head + "".join(f" {'ms/clause b=' + str(b):>14s}" for b in sizes))
    for r in result["encoder"]:
        if "skipped" in r:
            print(f"{r['variant']:8s} skipped: {r['skipped']}")
            continue
        line = f"{r['variant']:8s} {r['threads']:7d} {r['model_mb']:6.1f} {r['ms_per_query']:9.1f}"
        print(line + "".join(f" {r['ms_per_clause'][b]:14.1f}" for b in sizes))
    if rows:
        r = rows[0]
        print(
            f"({r['queries']} questions one at a time; {r['clauses']} clauses of {r['mean_clause_chars']} chars)"
        )
    index = result.get("index")
    if index:
        head = f"index of {index.get('files', '?')} files (ingest {index.get('ingest_s', '-')} s):"
        print(f"{head} BM25 only {index['bm25_only_s']} s")
        for b in index["builds"]:
            print(
                f"  dense int8, {b['threads']} thread(s): {b['seconds']} s for {b['units']} units "
                f"({b['embedded']} embedded, {b['clauses']} clauses, {b['documents']} documents)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default="int8,fp32")
    ap.add_argument("--threads", default="1,2", help="intra-op threads for the encoder figures")
    ap.add_argument("--passages", type=int, default=200, help="clause passages to encode")
    ap.add_argument("--batch-sizes", default="1,4,32", help="passage batch sizes to time")
    ap.add_argument("--index-threads", default="1,2", help="threads for the index builds")
    ap.add_argument("--no-index", action="store_true", help="skip Neo4j, ingestion and index builds")
    ap.add_argument("--uri", help="an existing Neo4j (the cas-all files ingested into it unless --no-ingest)")
    ap.add_argument("--no-ingest", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from kgqa.logging import configure_logging
    from serving.retrieval import RetrievalConfig

    configure_logging("WARNING")  # stdout carries the table or the JSON only
    files = cas_files()
    if not files:
        print(
            f"no Markdown files in {_shared_corpus() / 'cas-all'} (set KGQA_SHARED_DIR); nothing to measure"
        )
        sys.exit(0)
    with (ROOT / "eval" / "questions.jsonl").open(encoding="utf-8") as fh:
        queries = [json.loads(line)["question"] for line in fh if line.strip()]
    passages = clause_passages(files, args.passages, RetrievalConfig().embed_chars)
    result: dict = {
        "command": shlex.join([".venv/bin/python", "bench/bench_embed.py", *sys.argv[1:]]),
        "cpus": os.cpu_count(),
        "load": [round(x, 2) for x in os.getloadavg()],
        "encoder": encoder_figures(
            args.variants.split(","),
            [int(t) for t in args.threads.split(",")],
            [int(b) for b in args.batch_sizes.split(",")],
            queries,
            passages,
        ),
    }
    if not args.no_index:
        from kg.local_server import LocalNeo4j

        work = Path(tempfile.mkdtemp(prefix="kgqa-bench-embed-"))
        server, uri = None, args.uri
        if uri is None:
            server = LocalNeo4j(work / "neo4j", free_port(), heap_mb=768, pagecache_mb=128)
            server.start(timeout=240)
            uri = server.bolt_uri
        try:
            result["index"] = index_figures(
                uri,
                work / "home",
                ingest=not args.no_ingest,
                threads=[int(t) for t in args.index_threads.split(",")],
            )
        finally:
            if server is not None:
                server.stop()
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
