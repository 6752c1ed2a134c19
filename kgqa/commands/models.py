"""`kgqa models list|activate|deactivate`: the registry of trained adapters (kg/registry.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from kgqa.commands.common import JsonOpt, load_settings, out, print_json

models_app = typer.Typer(help="The model registry: trained adapters and the active one.", no_args_is_help=True)


@models_app.command("list")
def models_list(as_json: JsonOpt = False) -> None:
    """Every registered model, oldest first; the active one is marked."""
    from kgqa.wiring import build_driver, build_registry

    settings = load_settings()
    with build_driver(settings) as driver:
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


@models_app.command("activate")
def models_activate(
    model_id: Annotated[str, typer.Argument(help="A model id from kgqa models list.")],
    as_json: JsonOpt = False,
) -> None:
    """Make MODEL_ID the model every running service answers with (picked up without a restart)."""
    from kgqa.wiring import build_driver, build_registry

    settings = load_settings()
    with build_driver(settings) as driver:
        model = build_registry(settings, driver).activate(model_id)
    if as_json:
        print_json(model.to_dict())
    else:
        out.print(f"active: {model.model_id} ({model.kind}, adapter {model.adapter_path or '-'})")


@models_app.command("deactivate")
def models_deactivate(as_json: JsonOpt = False) -> None:
    """No active model: services answer with their configured backend alone."""
    from kgqa.wiring import build_driver, build_registry

    settings = load_settings()
    with build_driver(settings) as driver:
        build_registry(settings, driver).deactivate()
    if as_json:
        print_json({"active": None})
    else:
        out.print("no model active")
