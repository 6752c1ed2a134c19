"""Score `kgqa ask --batch` output against the gold clause ids of eval/questions.jsonl.

    .venv/bin/kgqa ingest ../shared/corpus/laws ../shared/corpus/standards
    .venv/bin/kgqa ask --batch eval/questions.jsonl --json > /tmp/answers.jsonl
    .venv/bin/python bench/score_answers.py eval/questions.jsonl /tmp/answers.jsonl [--json]

Prints the share of VERIFIED answers, citation hit@1/hit@5 at document and article level (the
citations of the answer, in order), correct NO_EVIDENCE on unanswerable questions and latency.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def score(questions: Path, answers: Path) -> dict[str, float | int]:
    gold = {q["id"]: q for q in map(json.loads, questions.read_text(encoding="utf-8").splitlines()) if q}
    rows = [json.loads(line) for line in answers.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = [r for r in rows if r.get("id") in gold and "status" in r]
    answerable = [r for r in rows if gold[r["id"]]["gold"]]
    unanswerable = [r for r in rows if not gold[r["id"]]["gold"]]

    def hit(r: dict, n: int, level: str) -> bool:
        ids = gold[r["id"]]["gold"]
        if level == "doc":
            want, got = {g.split("/")[0] for g in ids}, [c["document_id"] for c in r["citations"]]
        else:
            want, got = set(ids), [c["clause_id"] for c in r["citations"]]
        return bool(want & set(got[:n]))

    def share(flags: list[bool]) -> float:
        return round(sum(flags) / len(flags), 3) if flags else 0.0

    latencies = [r["timings"]["total_ms"] for r in rows]
    return {
        "questions": len(rows),
        "verified_share_answerable": share([r["status"] == "VERIFIED" for r in answerable]),
        "verified_share_all": share([r["status"] == "VERIFIED" for r in rows]),
        "doc_hit@1": share([hit(r, 1, "doc") for r in answerable]),
        "doc_hit@5": share([hit(r, 5, "doc") for r in answerable]),
        "article_hit@1": share([hit(r, 1, "article") for r in answerable]),
        "article_hit@5": share([hit(r, 5, "article") for r in answerable]),
        "unanswerable_no_evidence": share([r["status"] == "NO_EVIDENCE" for r in unanswerable]),
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("questions", type=Path)
    ap.add_argument("answers", type=Path)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    result = score(args.questions, args.answers)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for k, v in result.items():
            print(f"{k:28s} {v}")


if __name__ == "__main__":
    main()
