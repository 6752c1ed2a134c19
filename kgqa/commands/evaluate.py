"""`kgqa eval`: answer the dataset's test sets with a model (+ adapter) and report the metrics.

Registered by the lead in kgqa/cli.py as ``app.command("eval")(eval_command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kgqa.commands.common import JsonOpt, err, load_settings, out, print_json
from kgqa.commands.models import record_eval_metrics

_ROWS = (
    ("key_fact_accuracy", "key facts"),
    ("token_f1", "token F1"),
    ("bleu", "BLEU"),
    ("rouge_l", "ROUGE-L"),
    ("semantic_similarity", "semantic"),
    ("perplexity", "perplexity"),
    ("citation_precision", "citation P"),
    ("citation_recall", "citation R"),
    ("hallucination_rate", "hallucination"),
    ("correct_refusal_rate", "correct refusal"),
    ("false_refusal_rate", "false refusal"),
    ("latency_p50_s", "latency p50 s"),
    ("tokens_per_second", "tokens/s"),
)


def eval_command(
    base: Annotated[Path, typer.Option("--base", help="Local base model directory (a Qwen or a tiny base).")],
    data: Annotated[
        list[Path],
        typer.Option(
            "--data",
            help="Dataset folder (evaluates chat/test_paraphrase.jsonl and chat/test_unseen.jsonl) or a "
            "chat JSONL file; repeat --data for several.",
        ),
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Report folder: metrics.json, predictions.jsonl, metrics.md.")
    ],
    adapter: Annotated[
        Path | None,
        typer.Option("--adapter", help="Training run folder (or adapter folder) with a LoRA adapter."),
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Eval config YAML (default: training/configs/eval.yaml).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Evaluate the first N records of each set.")
    ] = None,
    backend: Annotated[
        str | None, typer.Option("--backend", help="auto | transformers | vllm (default: from config).")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="Most tokens per answer (default: from config).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a model (+ LoRA adapter) on test sets: key facts, F1, BLEU, citations, AHP composite."""
    from pydantic import ValidationError

    from kgqa.errors import ConfigError
    from kgqa.wiring import build_encoder_loader, build_generator
    from training.eval_config import EvalConfig, GenerationConfig
    from training.evaluate import EvalRunner, load_test_sets

    settings = load_settings()
    cfg = EvalConfig.load(config)
    if limit is not None:
        cfg.limit = limit
    overrides = {"backend": backend, "max_new_tokens": max_new_tokens}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if overrides:
        try:
            cfg.generation = GenerationConfig.model_validate({**cfg.generation.model_dump(), **overrides})
        except ValidationError as exc:
            raise ConfigError(f"invalid generation option: {exc}") from exc
    test_sets = load_test_sets(data)
    generator = build_generator(base, adapter, cfg.generation)
    loader = build_encoder_loader(settings.models_dir)
    report = EvalRunner(cfg, generator, load_encoder=loader, progress=not as_json).run(
        test_sets, out_dir
    )
    report["registered_model"] = record_eval_metrics(adapter, report)
    if as_json:
        print_json(report)
        return
    table = Table(title=f"{report['model']['model_id']} — composite (AHP, CR {report['ahp']['cr']:.3f})")
    table.add_column("metric")
    for name in report["test_sets"]:
        table.add_column(name, justify="right")
    for key, label in _ROWS:
        table.add_row(label, *(_fmt(s["aggregates"].get(key)) for s in report["test_sets"].values()))
    table.add_row(
        "[bold]composite[/]", *(_fmt(s["composite"]["score"]) for s in report["test_sets"].values())
    )
    out.print(table)
    err.print(f"report written to {out_dir} (metrics.json, predictions.jsonl, metrics.md)")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


__all__ = ["eval_command"]
