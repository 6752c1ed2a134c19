"""`kgqa dataset build`: the QA dataset from the clause graph (see training/dataset.py)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from kgqa.commands.common import JsonOpt, err, load_settings, out, print_json

dataset_app = typer.Typer(help="Build fine-tuning datasets from the clause graph.", no_args_is_help=True)


@dataset_app.command("build")
def dataset_build(
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Dataset folder (default: $KGQA_HOME/dataset).")
    ] = None,
    since: Annotated[
        int | None,
        typer.Option(help="Regenerate only pairs of clauses changed after this graph version; carry the rest."),
    ] = None,
    llm_endpoint: Annotated[
        str | None,
        typer.Option(
            help="OpenAI-compatible base URL (…/v1) of the generator LLM (default: KGQA_LLM__BASE_URL)."
        ),
    ] = None,
    llm_model: Annotated[
        str | None, typer.Option(help="Model name at --llm-endpoint (default: KGQA_LLM__MODEL).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of every random choice (default: from config).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Dataset config YAML (default: training/configs/dataset.yaml).")
    ] = None,
    judge: Annotated[bool, typer.Option(help="Let the LLM rate every pair (needs an LLM endpoint).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Generate QA pairs from active clauses, score, split and export them with a report."""
    from kgqa.errors import ConfigError
    from kgqa.wiring import build_driver
    from training.datagen.llm_client import LlmConfig
    from training.datagen.source import GraphSource
    from training.dataset import DatasetBuilder
    from training.dataset_config import DatasetConfig

    settings = load_settings()
    cfg = DatasetConfig.load(config)
    if seed is not None:
        cfg.seed = seed
    if bool(llm_endpoint) != bool(llm_model):
        raise ConfigError("--llm-endpoint and --llm-model go together")
    # The LLM writes pairs when an endpoint is named: KGQA_LLM__* (the one endpoint kgqa has; also
    # its key, timeout and retries), the config's client (which also says how to sample), the
    # flags; later ones win.
    if cfg.llm.client is not None or llm_endpoint or settings.llm.configured:
        base = settings.llm.model_dump(exclude_none=True)
        if cfg.llm.client is not None:
            base.update(cfg.llm.client.model_dump(exclude_unset=True))
        if llm_endpoint:
            base.update(base_url=llm_endpoint, model=llm_model)
        if base.get("cache_dir") is None:
            base["cache_dir"] = settings.home / "llm-cache"
        cfg.llm.client = LlmConfig.model_validate(base)
    if judge:
        if cfg.llm.client is None:
            raise ConfigError(
                "--judge needs an LLM: --llm-endpoint and --llm-model, or KGQA_LLM__BASE_URL and KGQA_LLM__MODEL"
            )
        cfg.llm.judge = True
    target = out_dir or settings.home / "dataset"
    with build_driver(settings, check=True) as driver:
        builder = DatasetBuilder.from_config(cfg, GraphSource(driver, settings.neo4j_database))
        result = builder.build(target, since=since)
    if as_json:
        print_json(asdict(result))
        return
    table = Table(title=f"Dataset {result.out_dir} — graph version {result.graph_version}")
    table.add_column("what")
    table.add_column("value", overflow="fold")
    table.add_row("pairs (kept)", f"{result.pairs} ({result.kept})")
    for name, counts in result.counts.items():
        table.add_row(name, " ".join(f"{k}:{v}" for k, v in sorted(counts.items())))
    table.add_row("rejections", " ".join(f"{k}:{v}" for k, v in sorted(result.rejections.items())) or "-")
    table.add_row("coverage", " ".join(f"{k}:{v}" for k, v in result.coverage.items() if not isinstance(v, dict)))
    table.add_row("carried over", str(result.carried_over))
    table.add_row("time", f"{result.seconds:.1f} s ({result.pairs_per_second} pairs/s)")
    if result.llm_usage:
        table.add_row("llm", " ".join(f"{k}:{v}" for k, v in result.llm_usage.items()))
    out.print(table)
    err.print(f"report: {Path(result.out_dir) / 'report' / 'report.md'}")
