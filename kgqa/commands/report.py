"""`kgqa report compare`: base, SFT and GRPO answers side by side (training/compare.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kgqa.commands.common import JsonOpt, err, load_settings, print_json

report_app = typer.Typer(help="Reports over evaluation results.", no_args_is_help=True)


@report_app.command("compare")
def report_compare(
    runs: Annotated[list[Path], typer.Argument(help="Eval folders (or run folders with eval/), in order.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Where compare.md/.html and the PNGs go.")],
    examples: Annotated[int, typer.Option(help="Questions shown side by side per test set.")] = 25,
    figure: Annotated[
        list[Path] | None,
        typer.Option("--figure", help="A PNG to embed (training curves: loss.png, rewards.png); repeatable."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Metric tables, plots, what changed, and the same questions answered by each model."""
    from training.compare import compare, load_run

    load_settings()
    summary = compare([load_run(p) for p in runs], out_dir, examples=examples, figures=figure or [])
    if as_json:
        print_json(summary)
    else:
        err.print(f"wrote {out_dir / 'compare.md'} and {out_dir / 'compare.html'}")
