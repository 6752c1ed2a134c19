"""Lines/second of the cleaner and characters/second of the redactor.

Two inputs: every Markdown file of the corpus (parsed once, before timing) and a synthetic
paginated document of ``--pages`` pages with a running header, a numbered footer and wrapped
clauses, which exercises header clustering (the only step that compares lines across pages).
Usage:

    .venv/bin/python bench/bench_clean.py [--corpus ../shared/corpus] [--pages 500] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ingest.clean import clean_document
from ingest.config import CleanConfig, RedactConfig
from ingest.parsers import parse_file
from ingest.redact import Redactor
from ingest.types import Line, Page, ParsedDocument

REPO = Path(__file__).resolve().parents[1]


def _synthetic(pages: int) -> ParsedDocument:
    body = "员工因公出差发生的交通费、住宿费、伙食补助费和其他杂费，应当在出差结束后十五个工作日内"
    out: list[Page] = []
    clause = 0
    for number in range(1, pages + 1):
        items = [Line("XX集团 内部资料 严禁外传", top=0.03)]
        for row in range(30):
            clause += row % 3 == 0
            text = (
                f"第{clause}条 {body[:24]}"
                if row % 3 == 0
                else body[: 28 - row % 2] + ("。" if row % 3 == 2 else "")
            )
            items.append(Line(text, top=0.15 + row * 0.025))
        items.append(Line(f"第 {number} 页 共 {pages} 页", top=0.96))
        out.append(Page(number, items))
    return ParsedDocument(Path("synthetic.pdf"), "pdf", "synthetic", out, "0" * 64)


def _lines(doc: ParsedDocument) -> int:
    return sum(len(p.lines) for p in doc.pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus")
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    docs = [parse_file(p) for p in sorted(args.corpus.glob("*/*.md"))]
    inputs = {"corpus-md": docs, f"synthetic-{args.pages}p": [_synthetic(args.pages)]}
    config, redactor = CleanConfig(), Redactor(RedactConfig())
    results = {}
    for name, batch in inputs.items():
        best_clean = best_redact = float("inf")
        for _ in range(args.repeat):
            start = time.perf_counter()
            cleaned = [clean_document(d, config) for d in batch]
            best_clean = min(best_clean, time.perf_counter() - start)
            start = time.perf_counter()
            for c in cleaned:
                redactor.redact_document(c)
            best_redact = min(best_redact, time.perf_counter() - start)
        lines = sum(_lines(d) for d in batch)
        chars = sum(len(b.text) for c in cleaned for b in c.blocks)
        results[name] = {
            "documents": len(batch),
            "lines": lines,
            "clean_s": round(best_clean, 4),
            "clean_lines_per_s": round(lines / best_clean),
            "redact_s": round(best_redact, 4),
            "redact_chars_per_s": round(chars / best_redact),
        }
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    else:
        for name, r in results.items():
            print(
                f"{name:>18}: {r['lines']:>7} lines, clean {r['clean_lines_per_s']:>8} lines/s, "
                f"redact {r['redact_chars_per_s']:>9} chars/s"
            )


if __name__ == "__main__":
    main()
