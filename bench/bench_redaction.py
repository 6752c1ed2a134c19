"""False positives of the redactor on public standards: how many redactions, of which kind, where.

The 42 accounting standards (``cas-all``) contain no personal data, so every redaction there is a
false positive: an amount, a date, an article or document number (财会〔2017〕22号) mistaken for
an ID, a phone or a name. Each file is parsed and cleaned as ingestion does, then redacted; the
script prints the count per kind and every redacted snippet with its context (the originals are
public text). Exit status 1 when there is any redaction, so a regression is visible in CI logs.
Usage:

    .venv/bin/python bench/bench_redaction.py [--corpus ../shared/corpus/cas-all] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from ingest.clean import clean_document
from ingest.config import CleanConfig, RedactConfig
from ingest.parsers import parse_file
from ingest.redact import Redactor

REPO = Path(__file__).resolve().parents[1]
_CONTEXT = 15


def _snippet(text: str, start: int, end: int, label: str) -> str:
    before = text[max(0, start - _CONTEXT) : start].replace("\n", " ")
    after = text[end : end + _CONTEXT].replace("\n", " ")
    return f"…{before}⟦{text[start:end]}→[{label}]⟧{after}…"


def scan(corpus: Path) -> tuple[int, Counter[str], list[dict[str, str]]]:
    """Files scanned, redactions per kind and one record per redacted snippet."""
    redactor = Redactor(RedactConfig())
    counts: Counter[str] = Counter()
    snippets: list[dict[str, str]] = []
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".md", ".txt", ".pdf", ".docx"))
    for path in files:
        doc = clean_document(parse_file(path), CleanConfig())
        texts = [("title", doc.title)] + [(f"page {b.page}", b.text) for b in doc.blocks if b.table is None]
        for where, text in texts:
            for f in redactor.find(text):
                counts[f.label] += 1
                snippets.append(
                    {
                        "file": path.name,
                        "where": where,
                        "kind": f.label,
                        "snippet": _snippet(text, f.start, f.end, f.label),
                    }
                )
        for block in doc.blocks:
            if block.table is None:
                continue
            table_counts: Counter[str] = Counter()
            redacted = redactor.redact_table(block.table, table_counts)
            counts.update(table_counts)
            for row, new_row in zip(block.table.rows, redacted.rows, strict=True):
                for cell, new in zip(row, new_row, strict=True):
                    if cell != new:
                        snippets.append(
                            {
                                "file": path.name,
                                "where": f"table p{block.page}",
                                "kind": "table",
                                "snippet": f"{cell} → {new}",
                            }
                        )
        _, path_counts = redactor.redact(path.name)
        counts.update(path_counts)
    return len(files), counts, snippets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "cas-all")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files, counts, snippets = scan(args.corpus)
    total = sum(counts.values())
    if args.json:
        print(
            json.dumps(
                {"files": files, "redactions": total, "by_kind": dict(counts), "snippets": snippets},
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(f"{files} files, {total} redactions")
        for kind, n in counts.most_common():
            print(f"  {kind}: {n}")
        for s in snippets:
            print(f"  {s['file']} ({s['where']}): {s['snippet']}")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
