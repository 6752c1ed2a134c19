"""Clauses/second and triples/second of the rule extractor over the corpus Markdown files.

Trees are built with the ingestion pipeline (parse, clean, redact, structure) before timing, so
only extraction is measured; pipeline creation (the segmenter's dictionary) is reported separately. If
the pipeline cannot run (an older checkout), a minimal 第X条 splitter builds the trees instead.
Usage:

    .venv/bin/python bench/bench_triples.py [--corpus ../shared/corpus] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import time
from collections import Counter
from pathlib import Path

from ingest.types import ClauseNode, DocumentTree, SectionNode
from kg.triples import RuleTripleExtractor

REPO = Path(__file__).resolve().parents[1]
_ARTICLE = re.compile(r"^\s*(第[零〇一二两三四五六七八九十百千0-9]+条)")


def _simple_tree(path: Path) -> DocumentTree:
    """A 第X条 splitter, used only when the ingestion pipeline is unavailable."""
    from ingest.ids import doc_id_for_title

    title = path.stem
    doc_id = doc_id_for_title(title)
    section = SectionNode(f"{doc_id}#全文", "全文", title, 1, 1, None)
    clauses: list[ClauseNode] = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        text = line.strip().lstrip("#").strip()
        if not text:
            continue
        m = _ARTICLE.match(text)
        if m:
            number = m.group(1)
            sha = hashlib.sha256(text.encode()).hexdigest()
            clauses.append(
                ClauseNode(
                    f"{doc_id}/{number}", number, len(clauses) + 1, text, 1, 1, section.section_id, sha
                )
            )
        elif clauses:
            clauses[-1].text += "\n" + text
    return DocumentTree(doc_id, title, "md", path, "", 1, 0, [section], clauses, [])


def build_trees(corpus: Path) -> tuple[list[DocumentTree], str]:
    files = sorted(corpus.rglob("*.md"))
    files = [f for f in files if f.name != "README.md"]
    try:
        from ingest.pipeline import IngestPipeline

        pipeline = IngestPipeline()
        return [pipeline.process(f) for f in files], "ingest.pipeline"
    except Exception as exc:  # an unfinished pipeline must not stop the benchmark
        print(f"(ingest pipeline unavailable: {exc!r}; using the simple 第X条 splitter)")
        return [_simple_tree(f) for f in files], "simple splitter"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed passes over all trees; the best is reported"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    trees, builder = build_trees(args.corpus)
    clauses = sum(len(t.clauses) for t in trees)
    started = time.perf_counter()
    extractor = RuleTripleExtractor()
    init_s = time.perf_counter() - started

    best = float("inf")
    predicates: Counter[str] = Counter()
    triples = references = 0
    for _ in range(max(1, args.repeat)):
        predicates.clear()
        triples = references = 0
        t0 = time.perf_counter()
        for tree in trees:
            ex = extractor.extract(tree, {})
            triples += len(ex.triples)
            references += len(ex.references)
            predicates.update(t.predicate for t in ex.triples)
        best = min(best, time.perf_counter() - t0)

    result = {
        "documents": len(trees),
        "trees_built_by": builder,
        "clauses": clauses,
        "triples": triples,
        "references": references,
        "pipeline_init_s": round(init_s, 3),
        "extract_s": round(best, 3),
        "clauses_per_s": round(clauses / best, 1),
        "triples_per_s": round(triples / best, 1),
        "by_predicate": dict(predicates.most_common()),
    }
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(
        f"{result['documents']} documents ({builder}), {clauses} clauses, {triples} triples, {references} references"
    )
    print(f"pipeline init {init_s:.2f}s; extraction {best:.3f}s (best of {args.repeat})")
    print(f"{result['clauses_per_s']} clauses/s, {result['triples_per_s']} triples/s")
    print("by predicate:", ", ".join(f"{k} {v}" for k, v in predicates.most_common()))


if __name__ == "__main__":
    main()
