"""A trained model served end to end: retrieval -> transformers backend (+ LoRA adapter) -> verifier.

For each model (the base, and each ``NAME=RUN_DIR`` adapter), builds the real QA service with
``answer_backend=transformers`` under the ``strict`` policy, asks the dataset's validation
questions (clauses no training run saw as SFT targets), and counts what the service returned:

* ``verified``: answers with status VERIFIED (the model's own, or the extractive fallback's);
* ``model_verified``: VERIFIED answers the model wrote itself (no fallback);
* ``fallback``: unverified generations strict mode replaced with the extractive answer;
* ``no_evidence``: refusals (the model refused, or retrieval found nothing).

Usage (`make train-real` runs it)::

    python bench/bench_served_model.py --base $KGQA_HOME/models/gemma-3-270m --data RUN/dataset \\
        --model sft=RUN/sft --model grpo=RUN/grpo --limit 8 --out RUN/served.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FALLBACK = "(extractive fallback)"


def questions(data_dir: Path, limit: int) -> list[dict]:
    """The first ``limit`` validation questions (answerable and not), in file order."""
    rows = [
        json.loads(line)
        for line in (data_dir / "chat" / "val.jsonl").read_text(encoding="utf-8").splitlines()
        if line
    ]
    return [{"id": r["id"], "question": r["question"], "answerable": r["answerable"]} for r in rows[:limit]]


def serve(base: Path, adapter: Path | None, items: list[dict], k: int, max_new_tokens: int) -> dict:
    """Ask every question through a fresh service for this model; the counts and each answer."""
    from kgqa.settings import get_settings
    from kgqa.wiring import build_driver, build_qa_service
    from serving.types import Caller, Role

    settings = get_settings()
    backend = dataclasses.replace(
        settings.backend,
        kind="transformers",
        model_path=str(base),
        adapter_path=str(adapter) if adapter else None,
        max_new_tokens=max_new_tokens,
    )
    settings = settings.model_copy(update={"backend": backend, "verify_policy": "strict"})
    answers = []
    with build_driver(settings) as driver:
        service = build_qa_service(settings, driver)
        try:
            # serving the extractive backend would count its answers as the model's
            if "extractive" in service.model_id:
                raise SystemExit(f"the service serves {service.model_id!r}, not {base} + {adapter}")
            for item in items:
                started = time.perf_counter()
                result = service.ask(item["question"], k, Caller("bench", Role.ADMIN))
                answers.append(
                    {
                        **item,
                        "status": result.status.value,
                        "model_id": result.model_id,
                        "text": result.text,
                        "fallback": FALLBACK in result.model_id,
                        "seconds": round(time.perf_counter() - started, 2),
                    }  # fmt: skip
                )
        finally:
            service.close()
    n = len(answers)
    verified = sum(a["status"] == "VERIFIED" for a in answers)
    fallback = sum(a["fallback"] for a in answers)
    return {
        "n": n,
        "verified": verified,
        "verified_share": verified / n if n else None,
        "model_verified": sum(a["status"] == "VERIFIED" and not a["fallback"] for a in answers),
        "fallback": fallback,
        "fallback_share": fallback / n if n else None,
        "no_evidence": sum(a["status"] == "NO_EVIDENCE" for a in answers),
        "seconds_per_answer": round(sum(a["seconds"] for a in answers) / n, 2) if n else None,
        "answers": answers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the base model folder")
    parser.add_argument("--data", type=Path, required=True, help="the dataset folder (chat/val.jsonl)")
    parser.add_argument("--model", action="append", default=[], help="NAME=RUN_DIR of an adapter; repeatable")
    parser.add_argument("--no-base", action="store_true", help="skip the base model without adapter")
    parser.add_argument("--limit", type=int, default=8, help="questions per model")
    parser.add_argument("--k", type=int, default=2, help="clauses retrieved per question")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    items = questions(args.data, args.limit)
    models: list[tuple[str, Path | None]] = [] if args.no_base else [("base", None)]
    for spec in args.model:
        name, _, run = spec.partition("=")
        models.append((name, Path(run)))
    report = {"questions": len(items), "k": args.k, "policy": "strict", "models": {}}
    for name, run in models:
        report["models"][name] = serve(args.base, run, items, args.k, args.max_new_tokens)
        m = report["models"][name]
        print(
            f"{name:6s} VERIFIED {m['verified']}/{m['n']} (model's own {m['model_verified']}), "
            f"extractive fallback {m['fallback']}/{m['n']}, refusals {m['no_evidence']}, "
            f"{m['seconds_per_answer']} s/answer",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
