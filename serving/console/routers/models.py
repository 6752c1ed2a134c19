"""Models (role admin): registered models with metrics and parents; compare; activate/deactivate.

The comparison is made from what the registry holds (``kgqa eval`` records each evaluation's
aggregates on the model it evaluated): one table per test set, one column per model, and each
figure's change from the first model chosen, so the page works wherever the evaluation folders are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from kg.registry import ModelVersion
from serving.console.deps import AdminCsrfDep, AdminDep, ConsoleDep, ServiceDep
from serving.console.web import PREFIX, ConsoleRoute

router = APIRouter(prefix=PREFIX + "/models", route_class=ConsoleRoute, include_in_schema=False)


@dataclass
class MetricRow:
    name: str
    values: list[float | None]
    deltas: list[float | None]


@dataclass
class MetricTable:
    group: str
    rows: list[MetricRow]


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def compare_tables(models: list[ModelVersion]) -> list[MetricTable]:
    """Per metric group (``eval:<test set>``, ``training``): each numeric metric across ``models``."""
    groups = list(dict.fromkeys(g for m in models for g, v in m.metrics.items() if isinstance(v, dict)))
    groups.sort(key=lambda g: (not g.startswith("eval:"), g))
    tables = []
    for group in groups:
        names = list(
            dict.fromkeys(
                k for m in models for k, v in (m.metrics.get(group) or {}).items() if _number(v) is not None
            )
        )
        rows = []
        for name in names:
            values = [_number((m.metrics.get(group) or {}).get(name)) for m in models]
            base = values[0]
            deltas = [None if v is None or base is None or i == 0 else v - base for i, v in enumerate(values)]
            rows.append(MetricRow(name, values, deltas))
        if rows:
            tables.append(MetricTable(group, rows))
    return tables


def parents_first(models: list[ModelVersion]) -> list[ModelVersion]:
    """``models`` with every model after the ancestors it continued from (else in the given order),
    so the first column, the one Δ is taken from, is the oldest ancestor."""
    by_id = {m.model_id: m for m in models}

    def depth(m: ModelVersion) -> int:
        seen: set[str] = set()
        n = 0
        while m.parent_id in by_id and m.parent_id not in seen:
            seen.add(m.parent_id)
            m = by_id[m.parent_id]
            n += 1
        return n

    return sorted(models, key=depth)


def _headline(model: ModelVersion) -> list[tuple[str, float]]:
    """The composite score of each evaluation, for the list page."""
    out = []
    for group, values in sorted(model.metrics.items()):
        if (
            group.startswith("eval:")
            and isinstance(values, dict)
            and _number(values.get("composite")) is not None
        ):
            out.append((group.removeprefix("eval:"), float(values["composite"])))
    return out


@router.get("")
def models_page(request: Request, console: ConsoleDep, service: ServiceDep, session: AdminDep) -> Response:
    models = service.list_models(session.caller)
    return console.render(
        request,
        "models.html",
        session,
        models=models,
        headlines={m.model_id: _headline(m) for m in models},
        known={m.model_id for m in models},
    )


@router.get("/compare")
def compare(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: AdminDep,
    model: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI reads the default, never mutates it)
) -> Response:
    by_id = {m.model_id: m for m in service.list_models(session.caller)}
    chosen = [by_id[m] for m in dict.fromkeys(model) if m in by_id]
    if not chosen:  # default: every model against its parent, oldest first
        chosen = list(by_id.values())
    chosen = parents_first(chosen)
    return console.render(
        request, "models_compare.html", session, models=chosen, tables=compare_tables(chosen)
    )


@router.post("/activate")
def activate(
    request: Request,
    service: ServiceDep,
    session: AdminCsrfDep,
    model_id: Annotated[str, Form()] = "",
) -> Response:
    service.activate_model(model_id, session.caller)
    return RedirectResponse(request.scope.get("root_path", "") + PREFIX + "/models", status_code=303)


@router.post("/deactivate")
def deactivate(request: Request, service: ServiceDep, session: AdminCsrfDep) -> Response:
    service.deactivate_model(session.caller)
    return RedirectResponse(request.scope.get("root_path", "") + PREFIX + "/models", status_code=303)
