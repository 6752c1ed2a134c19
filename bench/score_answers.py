"""Score `kgqa ask --batch` output as the checkers do: the citations each answer carries.

Any question set of eval/ or ../shared/eval/dev (several at once): the short questions of
eval/questions.jsonl (gold clause ids), the real letters of citation_dev.jsonl and
eval/heldout_letters.jsonl (gold standards and articles), eval/unanswerable_letters.jsonl (no
gold: the answer should be NO_EVIDENCE). Hits are counted as ``bench/bench_retrieval.py`` counts
them (``devsets.hits``: a standard by its 第N号, an article by (standard, 第X条); clause ids for the
short questions). Lines that are errors (no ``status``) are counted, not scored.

    .venv/bin/kgqa ingest ../shared/corpus/cas-all
    cat ../shared/eval/dev/citation_dev.jsonl eval/unanswerable_letters.jsonl > /tmp/letters.jsonl
    .venv/bin/kgqa ask --batch /tmp/letters.jsonl --json > /tmp/answers.jsonl
    .venv/bin/python bench/score_answers.py /tmp/answers.jsonl ../shared/eval/dev/citation_dev.jsonl \
        eval/unanswerable_letters.jsonl [--json]

Prints the share of VERIFIED answers, then ``bench_retrieval.py``'s row (``devsets.score_rows``):
citation hit@1/hit@5 at document and article level (the citations of the answer, in order;
article rows over the questions whose gold names articles), the share of answerable questions
refused and of unanswerable ones refused, each with its 95% bootstrap interval and the number of
questions behind it; and latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from devsets import Cited, Item, load_any, mean, score_rows  # noqa: E402


def score(answers: Path, question_sets: list[Path]) -> dict[str, float | int | None]:
    items: dict[str, Item] = {i.id: i for path in question_sets for i in load_any(path)}
    rows = [json.loads(line) for line in answers.read_text(encoding="utf-8").splitlines() if line.strip()]
    errors = sum(1 for r in rows if "status" not in r)
    rows = [r for r in rows if r.get("id") in items and "status" in r]
    asked = [items[r["id"]] for r in rows]
    answerable = [r for r in rows if items[r["id"]].answerable]
    cited = {
        r["id"]: [Cited(c["clause_id"], c["document_title"], c["clause_number"]) for c in r["citations"]]
        for r in rows
    }
    refused = {r["id"]: r["status"] == "NO_EVIDENCE" for r in rows}
    latencies = [r["timings"]["total_ms"] for r in rows]
    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "unanswerable": len(rows) - len(answerable),
        "error_lines": errors,
        "verified(ans)": mean(float(r["status"] == "VERIFIED") for r in answerable),
        **score_rows(asked, cited, refused),
        "p50 ms": round(statistics.median(latencies), 1) if latencies else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("answers", type=Path, help="the JSON lines of kgqa ask --batch --json")
    ap.add_argument("questions", type=Path, nargs="+", help="the question sets the batch was made of")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = score(args.answers, args.questions)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        intervals, counts = result.get("ci95", {}), result.get("n", {})
        for k, v in result.items():
            if k in ("ci95", "n"):
                continue
            if k in intervals and v is not None:
                low, high = intervals[k]
                print(f"{k:28s} {v:.3f}  95% [{low:.3f}, {high:.3f}] over {counts[k]}")
            else:
                print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
