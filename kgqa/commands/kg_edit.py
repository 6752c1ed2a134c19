"""``kgqa kg edit ...``, ``kgqa kg history``, ``kgqa kg revert``, ``kgqa kg impact``: the knowledge
managers' verbs for scripts, over the same :class:`serving.edits.EditService` the servers use.

Every edit needs ``--reason`` and ``--expected-version`` (the version you read: ``kgqa kg clause
ID`` shows a clause's, ``kgqa kg version ID`` any id's). The Change records the actor
``cli:<user>`` with role admin. ``--json`` prints the result for machines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Annotated, Any

import typer
from rich.table import Table

from kgqa.commands.common import JsonOpt, cli_caller, load_settings, out, print_json

edit_app = typer.Typer(
    help="Edit the clause graph (each edit is a Change: kgqa kg history ID).", no_args_is_help=True
)
triple_app = typer.Typer(help="Add, correct, confirm or reject a triple.", no_args_is_help=True)
entity_app = typer.Typer(help="Rename or merge entities.", no_args_is_help=True)
edit_app.add_typer(triple_app, name="triple")
edit_app.add_typer(entity_app, name="entity")

Reason = Annotated[str, typer.Option("--reason", help="Why the graph is changed (recorded on the Change).")]
Expected = Annotated[
    int,
    typer.Option("--expected-version", help="The version you read (clause version; triple/entity revision)."),
]
Force = Annotated[
    bool, typer.Option("--force", help="Store values the clause text does not state, marked asserted.")
]
Qualifiers = Annotated[
    str, typer.Option("--qualifiers", help='Qualifiers as a JSON object, e.g. {"surface": "十五日内"}.')
]


@contextmanager
def _edits() -> Iterator[Any]:
    from kgqa.wiring import build_driver, build_edit_service

    settings = load_settings()
    with build_driver(settings) as driver:
        yield build_edit_service(settings, driver)


def _run(call: Callable[[Any], Any], as_json: bool) -> None:
    with _edits() as edits:
        result = call(edits)
    if as_json:
        print_json(asdict(result))
        return
    extra = " (asserted: not in the clause text)" if result.asserted else ""
    out.print(f"change {result.seq}: {result.op} {result.target_id} -> version {result.version}{extra}")


def _triple(subject: str, predicate: str, obj: str, qualifiers: str):
    from serving.edits import qualifiers_from_json, triple_values

    return triple_values(subject, predicate, obj, qualifiers_from_json(qualifiers, "--qualifiers"))


@edit_app.command("clause-text")
def clause_text(
    clause_id: Annotated[str, typer.Argument(help="e.g. 招标投标法/第四十六条")],
    text: Annotated[str, typer.Option("--text", help="The clause's new text.")],
    reason: Reason,
    expected_version: Expected,
    as_json: JsonOpt = False,
) -> None:
    """New text for a clause: a new version (the old kept), its triples re-extracted."""
    _run(lambda e: e.edit_clause_text(cli_caller(), clause_id, text, expected_version, reason), as_json)


@edit_app.command("retire")
def retire(clause_id: str, reason: Reason, expected_version: Expected, as_json: JsonOpt = False) -> None:
    """Retire a clause: answers can no longer cite it."""
    _run(lambda e: e.retire_clause(cli_caller(), clause_id, expected_version, reason), as_json)


@edit_app.command("restore")
def restore(clause_id: str, reason: Reason, expected_version: Expected, as_json: JsonOpt = False) -> None:
    """Make a retired clause's last version active again."""
    _run(lambda e: e.restore_clause(cli_caller(), clause_id, expected_version, reason), as_json)


@triple_app.command("add")
def triple_add(
    clause_id: str,
    subject: Annotated[str, typer.Option("--subject")],
    predicate: Annotated[str, typer.Option("--predicate", help="期限, 金额, 比例, 责任主体, 应当, ...")],
    obj: Annotated[str, typer.Option("--object")],
    reason: Reason,
    expected_version: Expected,
    qualifiers: Qualifiers = "",
    force: Force = False,
    as_json: JsonOpt = False,
) -> None:
    """State a new triple in a clause (--expected-version: the clause's version)."""
    values = _triple(subject, predicate, obj, qualifiers)
    _run(lambda e: e.add_triple(cli_caller(), clause_id, values, expected_version, reason, force), as_json)


@triple_app.command("correct")
def triple_correct(
    triple_id: str,
    subject: Annotated[str, typer.Option("--subject")],
    predicate: Annotated[str, typer.Option("--predicate")],
    obj: Annotated[str, typer.Option("--object")],
    reason: Reason,
    expected_version: Expected,
    qualifiers: Qualifiers = "",
    force: Force = False,
    as_json: JsonOpt = False,
) -> None:
    """Correct a triple (its id stays)."""
    values = _triple(subject, predicate, obj, qualifiers)
    _run(
        lambda e: e.correct_triple(cli_caller(), triple_id, values, expected_version, reason, force), as_json
    )


@triple_app.command("confirm")
def triple_confirm(
    triple_id: str, reason: Reason, expected_version: Expected, as_json: JsonOpt = False
) -> None:
    """Mark a triple as checked by a person."""
    _run(lambda e: e.confirm_triple(cli_caller(), triple_id, expected_version, reason), as_json)


@triple_app.command("reject")
def triple_reject(
    triple_id: str, reason: Reason, expected_version: Expected, as_json: JsonOpt = False
) -> None:
    """Reject a wrong triple: kept for the record, no longer evidence."""
    _run(lambda e: e.reject_triple(cli_caller(), triple_id, expected_version, reason), as_json)


@entity_app.command("rename")
def entity_rename(
    entity_id: Annotated[str, typer.Argument(help="e.g. party:招标人")],
    name: Annotated[str, typer.Option("--name", help="The new name; the old one becomes an alias.")],
    reason: Reason,
    expected_version: Expected,
    as_json: JsonOpt = False,
) -> None:
    """Rename an entity; the old name stays as an alias."""
    _run(lambda e: e.rename_entity(cli_caller(), entity_id, name, expected_version, reason), as_json)


@entity_app.command("merge")
def entity_merge(
    source_id: Annotated[str, typer.Argument(help="The entity merged away.")],
    target_id: Annotated[str, typer.Argument(help="The entity that stays.")],
    reason: Reason,
    expected_version: Annotated[int, typer.Option("--expected-version", help="The target's revision.")],
    expected_source_version: Annotated[
        int, typer.Option("--expected-source-version", help="The source's revision.")
    ],
    as_json: JsonOpt = False,
) -> None:
    """Merge one entity into another; names and aliases kept as aliases."""
    _run(
        lambda e: e.merge_entities(cli_caller(), source_id, target_id, expected_version, expected_source_version,
                                   reason),
        as_json,
    )  # fmt: skip


def history(
    target_id: Annotated[str, typer.Argument(help="A clause, triple, entity or document id.")],
    as_json: JsonOpt = False,
) -> None:
    """Every Change of an id, oldest first: who, when, what, why, before and after."""
    with _edits() as edits:
        changes = edits.history(cli_caller(), target_id)
    if as_json:
        print_json([asdict(c) for c in changes])
        return
    table = Table("seq", "at", "op", "actor", "role", "reason", "version")
    for c in changes:
        version = (c.after or c.before or {}).get("version", (c.after or c.before or {}).get("rev", ""))
        table.add_row(str(c.seq), c.at, c.op, c.actor, c.role, c.reason, str(version))
    out.print(table)


def revert(
    seq: Annotated[int, typer.Argument(help="The seq of the Change to undo (kgqa kg history ID).")],
    reason: Reason,
    as_json: JsonOpt = False,
) -> None:
    """Undo one Change as a new Change (refused when its target changed after it)."""
    _run(lambda e: e.revert(cli_caller(), seq, reason), as_json)


def version(target_id: str, as_json: JsonOpt = False) -> None:
    """The current version of a clause, triple or entity: what --expected-version must be."""
    with _edits() as edits:
        kind, current = edits.current_version(cli_caller(), target_id)
    if as_json:
        print_json({"target_id": target_id, "kind": kind, "version": current})
        return
    out.print(f"{kind} {target_id} version {current}")


def impact(
    target_id: Annotated[str, typer.Argument(help="A clause, triple or entity id.")],
    as_json: JsonOpt = False,
) -> None:
    """What an edit of an id touches: dataset pairs, stale models, answers citing old versions,
    and whether the retrieval index has caught up."""
    with _edits() as edits:
        report = edits.impact(cli_caller(), target_id)
    if as_json:
        print_json(asdict(report))
        return
    versions = ", ".join(f"{c} v{v}" for c, v in report.clause_versions.items()) or "-"
    out.print(f"[bold]{target_id}[/]: clauses {versions}; last change {report.last_change or '-'}; "
              f"graph version {report.graph_version}")  # fmt: skip
    stale_pairs = sum(p.stale for p in report.pairs)
    where = report.dataset_dir if report.dataset_found else f"{report.dataset_dir} (no dataset)"
    out.print(f"dataset pairs: {len(report.pairs)} ({stale_pairs} from an older version) in {where}")
    out.print(f"stale models: {', '.join(m.model_id for m in report.stale_models) or 'none'}")
    out.print(f"answers citing an older version: {len(report.answers_citing_old)}")
    for a in report.answers_citing_old[:20]:
        out.print(f"  {a.answer_id} {a.created_at} {a.clause_id} v{a.clause_version}: {a.question}")
    caught = "yes" if report.index_caught_up else "no"
    out.print(f"retrieval index at graph version {report.index_graph_version}; caught up: {caught}")


def register(kg_app: typer.Typer) -> None:
    """Put the edit verbs under ``kgqa kg``."""
    kg_app.add_typer(edit_app, name="edit")
    kg_app.command("history")(history)
    kg_app.command("revert")(revert)
    kg_app.command("version")(version)
    kg_app.command("impact")(impact)


__all__ = ["register"]
