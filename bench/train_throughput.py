"""Throughput and peak memory of LoRA SFT (TRL + PEFT) on the tiny Qwen base, CPU or GPU.

Builds the tiny base (tokenizer trained on the corpus and the prompts' wording; pretraining is skipped unless asked,
since it does not change the step cost), a chat dataset shaped like the generator's — the
system prompt with real corpus clauses (``kg.prompting.build_system_prompt``), a question, and
an answer quoting the clause with its ``[[ID]]`` marker — then runs ``--steps`` SFT steps through
``training.sft.SftRunner`` (bf16 + gradient checkpointing on CUDA, fp32 on CPU, as in real runs)
and prints steps/s, tokens/s and peak memory (RSS on CPU, ``torch.cuda.max_memory_allocated``
on GPU). Usage:

    .venv/bin/python bench/train_throughput.py [--steps 30] [--batch-size 8] [--corpus DIR ...]
        [--device cuda|cpu] [--hidden-size 192 --layers 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

from kg.citations import format_marker
from kg.prompting import ContextClause, build_system_prompt
from training.pretrain import TinyBaseConfig, build_pretrained_base
from training.sft import SftRunner
from training.sft_config import SftConfig
from training.tiny_base import read_corpus

CLAUSE_RE = re.compile(r"^\s*(第[一二三四五六七八九十百零〇]+条)\s*(.+)$")
DEFAULT_CORPORA = (Path("../shared/corpus"), Path("samples/src"))


def corpus_clauses(named_texts: list[tuple[str, str]], limit: int) -> list[ContextClause]:
    """Numbered clauses (第N条 + its paragraph) of the corpus files, in file order."""
    clauses = []
    for path, text in named_texts:
        title = Path(path).stem
        for line in text.splitlines():
            m = CLAUSE_RE.match(line.replace("\u3000", " "))
            if m and len(m.group(2)) >= 12:
                number = m.group(1)
                clauses.append(ContextClause(f"{title}/{number}", title, number, m.group(2).strip()[:240]))
                if len(clauses) >= limit:
                    return clauses
    return clauses


def write_dataset(root: Path, clauses: list[ContextClause], n_val: int) -> None:
    """Manifest + chat/train.jsonl + chat/val.jsonl; each prompt carries three clauses, the gold first."""
    (root / "chat").mkdir(parents=True)
    records = []
    for i, clause in enumerate(clauses):
        distractors = [clauses[(i + k) % len(clauses)] for k in (7, 13)]
        answer = f"根据{clause.number}，{clause.text.rstrip('。')}{format_marker(clause.clause_id)}。"
        records.append(
            {
                "messages": [
                    {"role": "system", "content": build_system_prompt([clause, *distractors])},
                    {"role": "user", "content": f"《{clause.doc_title}》{clause.number}有什么规定？"},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    for name, part in (("val", records[:n_val]), ("train", records[n_val:])):
        with (root / "chat" / f"{name}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
    (root / "manifest.json").write_text(json.dumps({"graph_version": 0, "dataset_hash": "bench"}), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30, help="SFT optimizer steps to time")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--records", type=int, default=400, help="clauses turned into chat records")
    parser.add_argument("--corpus", type=Path, action="append", help="corpus file/folder (repeatable)")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--hidden-size", type=int, default=192)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--pretrain-steps", type=int, default=0)
    parser.add_argument("--target-modules", default="q_proj,k_proj,v_proj", help='comma list or "all-linear"')
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    corpus = args.corpus or [next((p for p in DEFAULT_CORPORA if p.exists()), DEFAULT_CORPORA[-1])]
    named = read_corpus(corpus)
    clauses = corpus_clauses(named, args.records)
    if len(clauses) < 20:
        print(f"only {len(clauses)} numbered clauses in {corpus}: give a larger --corpus", file=sys.stderr)
        return 1
    targets = args.target_modules if args.target_modules == "all-linear" else args.target_modules.split(",")
    with tempfile.TemporaryDirectory(prefix="kgqa-bench-train-") as tmp:
        tmp_path = Path(tmp)
        base = build_pretrained_base(
            tmp_path / "base",
            corpus,
            TinyBaseConfig(hidden_size=args.hidden_size, num_layers=args.layers, steps=args.pretrain_steps),
            progress=False,
        )
        write_dataset(tmp_path / "data", clauses, n_val=max(4, len(clauses) // 20))
        config = SftConfig(
            learning_rate=2e-3,
            target_modules=targets,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=args.batch_size,
            gradient_accumulation_steps=args.grad_accum,
            max_length=args.max_length,
            max_steps=args.steps,
            eval_steps=args.steps,
            save_steps=args.steps,
            logging_steps=max(1, args.steps // 10),
        )
        runner = SftRunner(config, device=args.device, progress=not args.json)
        result = runner.run(Path(base.model_dir), tmp_path / "data", tmp_path / "run")
    m = result.metrics
    summary = {
        "device": m["device"],
        "precision": m["precision"],
        "steps": m["steps"],
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
        "records": len(clauses),
        "total_params": m["total_params"],
        "trainable_params": m["trainable_params"],
        "train_seconds": m["train_seconds"],
        "steps_per_second": m["steps_per_second"],
        "tokens_per_second": m["tokens_per_second"],
        "peak_rss_mb": m["peak_rss_mb"],
        "peak_cuda_mb": m["peak_cuda_mb"],
        "first_train_loss": m["first_train_loss"],
        "final_train_loss": m["final_train_loss"],
    }
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        mem = f"peak CUDA {m['peak_cuda_mb']} MB, " if m["peak_cuda_mb"] else ""
        print(
            f"{m['device']} {m['precision']}: {m['steps']} steps x batch {args.batch_size}x{args.grad_accum} in "
            f"{m['train_seconds']}s -> {m['steps_per_second']} steps/s, {m['tokens_per_second']} tokens/s; "
            f"{mem}peak RSS {m['peak_rss_mb']} MB; {m['trainable_params']:,}/{m['total_params']:,} params trained; "
            f"loss {m['first_train_loss']} -> {m['final_train_loss']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
