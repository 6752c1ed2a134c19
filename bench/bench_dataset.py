"""QA pairs per second from the graph: template generation alone, and the whole dataset build.

Starts its own Neo4j (own data dir and free port) unless --uri is given, ingests the shared corpus
and the sample manuals (or --docs), reads one snapshot, then times (1) template generation only
and (2) a full ``DatasetBuilder.build`` (generation, augmentation, scoring with the verifier,
splits, exports, report), and prints pairs/s for both, coverage and the rejection breakdown.

    .venv/bin/python bench/bench_dataset.py [--docs PATH ...] [--uri bolt://...] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from neo4j import GraphDatabase

from kg.local_server import free_port

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DOCS = [
    REPO.parent / "shared" / "corpus" / "laws",
    REPO.parent / "shared" / "corpus" / "standards",
    REPO.parent / "shared" / "corpus" / "docx",
    REPO / "samples" / "manuals",
]


def run(uri: str, docs: list[Path], work: Path) -> dict:
    from kgqa.settings import Settings
    from kgqa.wiring import build_ingest_service
    from training.datagen.source import GraphSource
    from training.datagen.template_gen import TemplateGenerator
    from training.datagen.templates import TemplateBank
    from training.dataset import DatasetBuilder
    from training.dataset_config import DatasetConfig

    with GraphDatabase.driver(uri, auth=None, notifications_min_severity="OFF") as driver:
        report = build_ingest_service(Settings(neo4j_uri=uri, home=work / "home"), driver).ingest(
            [d for d in docs if d.exists()]
        )
        source = GraphSource(driver)
        t0 = time.perf_counter()
        snapshot = source.snapshot()
        read_s = time.perf_counter() - t0
        config = DatasetConfig.load().seeded()
        generator = TemplateGenerator(TemplateBank.load(), config.generation)
        t0 = time.perf_counter()
        pairs, rejections = generator.generate(snapshot)
        gen_s = time.perf_counter() - t0
        result = DatasetBuilder.from_config(config, source).build(work / "dataset")
    return {
        "documents": len(report.ingested),
        "active_clauses": len(snapshot.clauses),
        "snapshot_read_s": round(read_s, 3),
        "template_pairs": len(pairs),
        "template_seconds": round(gen_s, 3),
        "template_pairs_per_s": round(len(pairs) / gen_s, 1),
        "build_pairs": result.pairs,
        "build_seconds": result.seconds,
        "build_pairs_per_s": result.pairs_per_second,
        "kept": result.kept,
        "bands": result.counts.get("band", {}),
        "coverage": {k: v for k, v in result.coverage.items() if k != "by_document"},
        "rejections": result.rejections,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, nargs="*", default=DEFAULT_DOCS)
    parser.add_argument("--uri", help="an existing, EMPTY Neo4j to use instead of starting one")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgqa-bench-dataset-") as tmp:
        work = Path(tmp)
        if args.uri:
            figures = run(args.uri, args.docs, work)
        else:
            from kg.local_server import LocalNeo4j

            server = LocalNeo4j(work / "neo4j", free_port(), heap_mb=1024, pagecache_mb=128)
            server.start(timeout=240)
            try:
                figures = run(server.bolt_uri, args.docs, work)
            finally:
                server.stop()
    if args.json:
        print(json.dumps(figures, ensure_ascii=False, indent=2))
        return
    print(f"{figures['documents']} documents, {figures['active_clauses']} active clauses "
          f"(snapshot read in {figures['snapshot_read_s']} s)")
    print(f"templates only: {figures['template_pairs']} pairs in {figures['template_seconds']} s "
          f"= {figures['template_pairs_per_s']} pairs/s")
    print(f"full build:     {figures['build_pairs']} pairs in {figures['build_seconds']} s "
          f"= {figures['build_pairs_per_s']} pairs/s (kept {figures['kept']}: {figures['bands']})")
    print(f"coverage: {json.dumps(figures['coverage'], ensure_ascii=False)}")
    print(f"rejections: {json.dumps(figures['rejections'], ensure_ascii=False)}")


if __name__ == "__main__":
    main()
