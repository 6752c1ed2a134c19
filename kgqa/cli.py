"""The `kgqa` command line. Thin: parse options, call one service, print text or JSON.

Exit codes: 0 success, 1 error, 2 usage error, 3 some files failed to ingest, 4 Neo4j unavailable.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kgqa.errors import GraphUnavailable, KgqaError
from kgqa.logging import configure_logging
from kgqa.settings import Settings, get_settings

app = typer.Typer(help="Knowledge-graph-augmented QA for finance compliance manuals.", no_args_is_help=True)
neo4j_app = typer.Typer(help="Run the local development Neo4j.", no_args_is_help=True)
kg_app = typer.Typer(help="Inspect the clause graph.", no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")
app.add_typer(kg_app, name="kg")

out = Console()
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]

EXIT_FAILED_FILES = 3
EXIT_UNAVAILABLE = 4


def _settings() -> Settings:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _print_json(payload: object) -> None:
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


# --- neo4j -------------------------------------------------------------------------------------


@neo4j_app.command("start")
def neo4j_start(
    bolt_port: Annotated[int | None, typer.Option(help="Bolt port (default: from KGQA_NEO4J_URI).")] = None,
    home: Annotated[Path | None, typer.Option(help="Server folder (default: $KGQA_HOME/neo4j).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Bolt.")] = 180.0,
    as_json: JsonOpt = False,
) -> None:
    """Build (first time) and start the embedded Neo4j; returns once Bolt answers."""
    from kgqa.wiring import build_local_server

    server = build_local_server(_settings(), home=home, bolt_port=bolt_port)
    if not server.is_built():
        err.print("Building the Neo4j launcher with Maven (first time only)...")
    status = server.start(timeout=timeout)
    if as_json:
        _print_json(asdict(status))
    else:
        out.print(f"Neo4j running (pid {status.pid}) at {status.bolt_uri}, files in {status.home}")


@neo4j_app.command("stop")
def neo4j_stop(
    bolt_port: Annotated[int | None, typer.Option(help="Bolt port of the instance.")] = None,
    home: Annotated[Path | None, typer.Option(help="Server folder (default: $KGQA_HOME/neo4j).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop the local Neo4j cleanly."""
    from kgqa.wiring import build_local_server

    server = build_local_server(_settings(), home=home, bolt_port=bolt_port)
    stopped = server.stop()
    if as_json:
        _print_json({"stopped": stopped, "home": str(server.home)})
    else:
        out.print("Neo4j stopped" if stopped else "Neo4j was not running")


@neo4j_app.command("status")
def neo4j_status(
    bolt_port: Annotated[int | None, typer.Option(help="Bolt port of the instance.")] = None,
    home: Annotated[Path | None, typer.Option(help="Server folder (default: $KGQA_HOME/neo4j).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Say whether the local Neo4j runs and answers on Bolt (exit 1 if not running)."""
    from kgqa.wiring import build_local_server

    status = build_local_server(_settings(), home=home, bolt_port=bolt_port).status()
    if as_json:
        _print_json(asdict(status))
    elif status.running:
        answers = "answers" if status.bolt_answers else "does NOT answer"
        out.print(f"Neo4j running (pid {status.pid}); Bolt at {status.bolt_uri} {answers}; files in {status.home}")
    else:
        out.print(f"Neo4j not running (files in {status.home})")
    if not status.running:
        raise typer.Exit(1)


# --- ingest ------------------------------------------------------------------------------------


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (PDF, DOCX, TXT, MD).")],
    as_json: JsonOpt = False,
) -> None:
    """Ingest manuals into the clause graph; failed files are listed with their reason."""
    from kgqa.wiring import build_driver, build_ingest_service

    settings = _settings()
    with build_driver(settings) as driver:
        service = build_ingest_service(settings, driver)
        with Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=as_json,
        ) as progress:
            task = progress.add_task("ingesting", total=None)
            report = service.ingest(
                paths,
                on_file_start=lambda files: progress.update(task, total=len(files)),
                on_progress=lambda p: progress.update(task, advance=1, description=f"ingesting {p.name}"),
            )
    if as_json:
        _print_json(
            {
                "ok": report.ok,
                "graph_version": report.graph_version,
                "ingested": [asdict(f) for f in report.ingested],
                "failed": [asdict(f) for f in report.failed],
            }
        )
    else:
        table = Table(title=f"Ingested {len(report.ingested)} file(s); graph version {report.graph_version}")
        for col in ("doc_id", "status", "pages", "sections", "clauses", "tables", "triples", "ocr", "redactions"):
            table.add_column(col)
        for f in report.ingested:
            table.add_row(
                f.doc_id,
                f"{f.status} (+{f.clauses_added} ~{f.clauses_updated} -{f.clauses_retired})",
                str(f.pages),
                str(f.sections),
                str(f.clauses),
                str(f.tables),
                str(f.triples),
                str(f.ocr_pages),
                ", ".join(f"{k}:{v}" for k, v in f.redactions.items()) or "-",
            )
        out.print(table)
        for f in report.ingested:
            for w in f.warnings:
                err.print(f"[yellow]warning[/] {f.path}: {w}")
        for f in report.failed:
            err.print(f"[red]failed[/] {f.path}: {f.reason}")
    if not report.ok:
        raise typer.Exit(EXIT_FAILED_FILES)


# --- kg ----------------------------------------------------------------------------------------


@kg_app.command("stats")
def kg_stats(as_json: JsonOpt = False) -> None:
    """Counts per label and relationship type, and the graph version."""
    from kgqa.wiring import build_driver, build_reader

    settings = _settings()
    with build_driver(settings) as driver:
        stats = build_reader(settings, driver).stats()
    if as_json:
        _print_json(asdict(stats))
        return
    out.print(f"graph version {stats.graph_version}")
    table = Table("label / relationship", "count")
    for k, v in sorted(stats.labels.items()):
        table.add_row(f"(:{k})", str(v))
    for k, v in sorted(stats.relationships.items()):
        table.add_row(f"[:{k}]", str(v))
    for k, v in sorted(stats.clause_status.items()):
        table.add_row(f"clauses {k}", str(v))
    out.print(table)


@kg_app.command("clause")
def kg_clause(
    clause_id: Annotated[str, typer.Argument(help="e.g. CAS-14/第五条")],
    version: Annotated[int | None, typer.Option(help="A specific version (default: the active one).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A clause with its document, section path, pages, versions, triples and references."""
    from kgqa.wiring import build_driver, build_reader

    settings = _settings()
    with build_driver(settings) as driver:
        view = build_reader(settings, driver).clause(clause_id, version)
    if as_json:
        _print_json(asdict(view))
        return
    out.print(f"[bold]{view.clause_id}[/] v{view.version} ({view.status}) — {view.document['title']}")
    out.print(f"section: {' > '.join(view.section_path) or '-'}; pages {view.page_start}-{view.page_end}")
    out.print(view.text)
    out.print(f"versions: {', '.join(str(h['version']) + ':' + h['status'] for h in view.history)}")
    for t in view.triples:
        out.print(f"  triple: ({t['subject']}) -[{t['predicate']}]-> ({t['object']})")
    for r in view.references_out:
        out.print(f"  refers to {r['kind']} {r['target']} ({r['text']})")
    for r in view.references_in:
        out.print(f"  referred to by {r['source']} ({r['text']})")
    for r in view.unresolved_references:
        out.print(f"  unresolved reference {r}")


def main() -> None:
    """Entry point: maps the kgqa error family to exit codes in one place."""
    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(1)
    except GraphUnavailable as exc:
        err.print(f"[red]error[/] {exc}")
        sys.exit(EXIT_UNAVAILABLE)
    except KgqaError as exc:
        err.print(f"[red]error[/] {exc}")
        sys.exit(1)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
