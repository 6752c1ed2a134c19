"""The `kgqa` command line. Thin: parse options, call one service, print text or JSON.

Exit codes: 0 success, 1 error, 2 usage error, 3 some files failed to ingest (or met hand edits),
4 Neo4j unavailable, 5 a stale edit (the target moved on since it was read).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kgqa.commands.common import (
    EXIT_FAILED_FILES,
    EXIT_STALE_EDIT,
    EXIT_UNAVAILABLE,
    JsonOpt,
    cli_caller,
    err,
    load_settings,
    out,
    print_json,
    print_json_line,
)
from kgqa.commands.dataset import dataset_app
from kgqa.commands.evaluate import eval_command
from kgqa.commands.grpo import grpo_command
from kgqa.commands.index import index_app
from kgqa.commands.kg_edit import register as register_kg_edit
from kgqa.commands.models import models_app
from kgqa.commands.report import report_app
from kgqa.commands.retrain import jobs_app, retrain_command
from kgqa.commands.train import train_app
from kgqa.errors import GraphUnavailable, InvalidArgument, KgqaError, StaleEdit

app = typer.Typer(help="Knowledge-graph-augmented QA for finance compliance manuals.", no_args_is_help=True)
neo4j_app = typer.Typer(help="Run the local development Neo4j.", no_args_is_help=True)
kg_app = typer.Typer(help="Inspect and edit the clause graph.", no_args_is_help=True)
register_kg_edit(kg_app)
app.add_typer(neo4j_app, name="neo4j")
app.add_typer(kg_app, name="kg")
app.add_typer(dataset_app, name="dataset")
app.add_typer(models_app, name="models")
app.add_typer(report_app, name="report")
app.add_typer(train_app, name="train")
app.add_typer(index_app, name="index")
train_app.command("grpo")(grpo_command)
app.command("eval")(eval_command)
app.command("retrain")(retrain_command)
app.add_typer(jobs_app, name="jobs")


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

    server = build_local_server(load_settings(), home=home, bolt_port=bolt_port)
    if not server.is_built():
        err.print("Building the Neo4j launcher with Maven (first time only)...")
    status = server.start(timeout=timeout)
    if as_json:
        print_json(asdict(status))
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

    server = build_local_server(load_settings(), home=home, bolt_port=bolt_port)
    stopped = server.stop()
    if as_json:
        print_json({"stopped": stopped, "home": str(server.home)})
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

    status = build_local_server(load_settings(), home=home, bolt_port=bolt_port).status()
    if as_json:
        print_json(asdict(status))
    elif status.running:
        answers = "answers" if status.bolt_answers else "does NOT answer"
        out.print(
            f"Neo4j running (pid {status.pid}); Bolt at {status.bolt_uri} {answers}; files in {status.home}"
        )
    else:
        out.print(f"Neo4j not running (files in {status.home})")
    if not status.running:
        raise typer.Exit(1)


# --- ingest ------------------------------------------------------------------------------------


@app.command("ingest")
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (PDF, DOCX, TXT, MD).")],
    index: Annotated[bool, typer.Option(help="Update the retrieval index afterwards.")] = True,
    replace: Annotated[
        list[str] | None,
        typer.Option(
            "--replace",
            metavar="DOC_ID",
            help="Let a file take over this document id from a document ingested from another file "
            "(its clauses are versioned, a document.replace Change is recorded). Repeatable.",
        ),
    ] = None,
    on_conflict: Annotated[
        str,
        typer.Option(
            "--on-conflict",
            help="A clause edited by hand whose source text changed too: 'keep' the edit and store "
            "the source's text as a pending version (default), or let the 'source' replace it.",
        ),
    ] = "keep",
    as_json: JsonOpt = False,
) -> None:
    """Ingest manuals into the clause graph; failed files are listed with their reason.

    A file whose document id already belongs to a document from another file is refused (exit 3)
    unless --replace names that id: nothing is ever replaced or retired silently. Clauses edited
    by hand whose source text changed are listed as conflicts (exit 3), see --on-conflict.
    """
    if on_conflict not in ("keep", "source"):
        raise typer.BadParameter("use keep or source", param_hint="--on-conflict")
    from kgqa.wiring import build_driver, build_index_store, build_ingest_service

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
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
                replace=replace or (),
                on_edit_conflict=on_conflict,  # type: ignore[arg-type]
            )
        if index and any(f.status != "unchanged" for f in report.ingested):
            build_index_store(settings, driver).update()
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "graph_version": report.graph_version,
                "ingested": [asdict(f) for f in report.ingested],
                "failed": [asdict(f) for f in report.failed],
                "skipped": [asdict(f) for f in report.skipped],
                "conflicts": [asdict(c) for c in report.conflicts],
            }
        )
    else:
        table = Table(title=f"Ingested {len(report.ingested)} file(s); graph version {report.graph_version}")
        table.add_column("doc_id", overflow="fold")
        table.add_column("status (+added ~updated -retired)", overflow="fold")
        for col in ("pages", "sections", "clauses", "tables", "triples", "ocr", "redactions"):
            table.add_column(col, overflow="fold")
        for f in report.ingested:
            table.add_row(
                f.doc_id,
                f"{f.status} +{f.clauses_added} ~{f.clauses_updated} -{f.clauses_retired}",
                str(f.pages),
                str(f.sections),
                str(f.clauses),
                str(f.tables),
                str(f.triples),
                str(f.ocr_pages),
                " ".join(f"{k}:{v}" for k, v in f.redactions.items()) or "-",
            )
        out.print(table)
        for f in report.ingested:
            for w in f.warnings:
                err.print(f"[yellow]warning[/] {f.path}: {w}")
        for f in report.skipped:
            err.print(f"[yellow]skipped[/] {f.path}: {f.reason}")
        for f in report.failed:
            err.print(f"[red]failed[/] {f.path}: {f.reason}")
        for c in report.conflicts:
            what = (
                f"edit v{c.edited_version} kept, source text pending as v{c.pending_version}"
                if c.policy == "keep"
                else f"edit v{c.edited_version} replaced by the source's text, v{c.pending_version}"
            )
            err.print(f"[yellow]conflict[/] {c.clause_id}: edited by hand and changed in the source; {what}")
    if not report.ok or report.conflicts:
        raise typer.Exit(EXIT_FAILED_FILES)


# --- index -------------------------------------------------------------------------------------

# --- kg ----------------------------------------------------------------------------------------


@kg_app.command("stats")
def kg_stats(as_json: JsonOpt = False) -> None:
    """Counts per label and relationship type, and the graph version."""
    from kgqa.wiring import build_driver, build_reader

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        stats = build_reader(settings, driver).stats()
    if as_json:
        print_json(asdict(stats))
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
    clause_id: Annotated[str, typer.Argument(help="e.g. CAS-14-收入/第五条")],
    version: Annotated[int | None, typer.Option(help="A specific version (default: the active one).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A clause with its document, section path, pages, versions, triples and references."""
    from kgqa.wiring import build_driver, build_reader

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        view = build_reader(settings, driver).clause(clause_id, version)
    if as_json:
        print_json(asdict(view))
        return
    out.print(f"[bold]{view.clause_id}[/] v{view.version} ({view.status}) — {view.document.title}")
    out.print(f"section: {' > '.join(view.section_path) or '-'}; pages {view.page_start}-{view.page_end}")
    out.print(view.text)
    out.print(f"versions: {', '.join(f'{h.version}:{h.status}' for h in view.history)}")
    for t in view.triples:
        out.print(f"  triple: ({t.subject}) -[{t.predicate}]-> ({t.object})")
    for r in view.references_out:
        out.print(f"  refers to {r.kind} {r.target} ({r.text})")
    for r in view.references_in:
        out.print(f"  referred to by {r.source} ({r.text})")
    for r in view.unresolved_references:
        out.print(f"  unresolved reference {r}")


# --- serve -------------------------------------------------------------------------------------


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Interface (default KGQA_HOST).")] = None,
    grpc_port: Annotated[
        int | None, typer.Option(help="gRPC port; 0 = a free one (default KGQA_GRPC_PORT).")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="HTTP port; 0 = a free one (default KGQA_HTTP_PORT).")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Server processes sharing both ports, one per core (default KGQA_WORKERS)."),
    ] = None,
) -> None:
    """Serve gRPC and REST (OpenAPI at /docs) until SIGTERM/Ctrl-C, then stop gracefully."""
    from kgqa.serve import ServeOptions
    from kgqa.serve import serve as run

    settings = load_settings()
    options = ServeOptions(
        host=host or settings.host,
        grpc_port=settings.grpc_port if grpc_port is None else grpc_port,
        http_port=settings.http_port if http_port is None else http_port,
        workers=settings.workers if workers is None else workers,
    )
    if options.workers == 1:
        from serving.auth import load_keyring

        keyring = load_keyring(settings.api_keys, settings.api_keys_file, settings.home)
        err.print(f"API keys: {keyring.source}")
    run(settings, options)


# --- ask / audit ---------------------------------------------------------------------------------

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


_cli_caller = cli_caller


@contextlib.contextmanager
def _closing(service):
    """The service, closed after use: its audit writer puts the answers into the graph."""
    try:
        yield service
    finally:
        service.close()


def _answer_dict(result) -> dict:
    payload = asdict(result)
    payload["status"] = result.status.value
    return payload


def _batch_line(chunk: bytes, n: int) -> str:
    """Line ``n`` of a --batch file as text: one line that is not UTF-8 is that line's error, not
    the whole batch's (a BOM, as Windows editors write, is dropped)."""
    try:
        return chunk.decode("utf-8-sig" if n == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"line {n} is not UTF-8 (byte {exc.start})") from exc


@app.command("ask")
def ask(
    question: Annotated[str | None, typer.Argument(help="The question (omit with --batch).")] = None,
    k: Annotated[int, typer.Option("--k", help="Clauses to retrieve as evidence.")] = 5,
    batch: Annotated[
        Path | None, typer.Option(help='JSONL file of {"id": ..., "question": ...} lines.')
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer in-process (no server): text with verified citations, or JSON lines with --batch."""
    from kgqa.wiring import build_driver, build_qa_service, limit_native_threads
    from serving.service import plain_text
    from serving.validation import json_object

    if (question is None) == (batch is None):
        raise typer.BadParameter("give either a QUESTION or --batch FILE")
    settings = load_settings()
    caller = _cli_caller()
    limit_native_threads(settings)
    with build_driver(settings, check=True) as driver, _closing(build_qa_service(settings, driver)) as service:
        if batch is None:
            result = service.ask(question, k, caller)
            if as_json:
                print_json(_answer_dict(result))
                return
            out.print(plain_text(result))
            out.print(
                f"[bold]{result.status.value}[/] model={result.model_id} graph_version={result.graph_version}"
            )
            for c in result.citations:
                pages = f"p.{c.page_start}" + (f"-{c.page_end}" if c.page_end != c.page_start else "")
                mark = "✓" if c.verified else "✗"
                out.print(
                    f"  {mark} {c.clause_id} v{c.clause_version} 《{c.document_title}》 {pages}: {c.quote}"
                )
            for a in result.unsupported:
                out.print(f"  [red]unsupported[/] {a.kind}: {a.text}")
            return
        failures = 0
        try:
            raw = batch.read_bytes()
        except OSError as exc:
            raise typer.BadParameter(f"cannot read {batch}: {exc}") from exc
        for n, chunk in enumerate(raw.splitlines(), start=1):
            item: dict = {}
            try:
                line = _batch_line(chunk, n)
                if not line.strip():
                    continue
                item = json_object(line, f"line {n}")
                if "question" not in item:  # the line's id is kept in the error row
                    raise InvalidArgument(f'line {n} has no "question" field')
                line_k = item.get("k")
                result = service.ask(item["question"], k if line_k is None else line_k, caller)
                row = {"id": item.get("id"), **_answer_dict(result)}
            except KgqaError as exc:
                if isinstance(exc, GraphUnavailable):
                    raise
                failures += 1
                row = {"id": item.get("id"), "line": n, "error": str(exc)}
            print_json_line(row)
        if failures:
            raise typer.Exit(EXIT_FAILED_FILES)


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Walk the answer hash chain; name the first record that does not match (exit 1).

    Answers still in a journal (a server that was killed and not restarted) are not in the chain
    yet: they are counted, and `kgqa audit replay` (or the next `kgqa serve`) appends them.
    """
    from kg.audit import AuditStore
    from kg.audit_writer import AuditJournal
    from kgqa.wiring import build_driver

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        report = AuditStore(driver, settings.neo4j_database).verify_chain()
    orphans = AuditJournal.adopt_orphans(settings.journal_dir)
    waiting = 0
    for orphan in orphans:
        waiting += len(orphan.read())
        orphan.release()
    if as_json:
        fields = ("ok", "checked", "first_bad_seq", "first_bad_answer_id", "reason")
        head = {"head_hash": report.last_hash if report.ok else None}  # the anchor to note down
        print_json({**{k: getattr(report, k) for k in fields}, **head, "journaled": waiting})
    elif report.ok:
        out.print(f"audit chain intact: {report.checked} record(s)")
    else:
        who = f" (answer {report.first_bad_answer_id})" if report.first_bad_answer_id else ""
        out.print(f"[red]audit chain broken at record {report.first_bad_seq}{who}: {report.reason}[/]")
    if waiting and not as_json:
        out.print(
            f"{waiting} answer(s) in journals of stopped servers under {settings.journal_dir}: "
            "`kgqa audit replay` appends them"
        )
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("replay")
def audit_replay(as_json: JsonOpt = False) -> None:
    """Append the answers journaled by servers that are gone (killed) to the chain in Neo4j.

    `kgqa serve` does this at start; journals of servers still running are left alone.
    """
    from kg.audit import AuditStore
    from kg.audit_writer import replay_orphans
    from kgqa.wiring import build_driver

    settings = load_settings()
    with build_driver(settings, check=True) as driver:
        appended = replay_orphans(AuditStore(driver, settings.neo4j_database), settings.journal_dir)
    if as_json:
        print_json({"appended": appended})
    else:
        out.print(f"{appended} journaled answer(s) appended to the audit chain")


def main() -> None:
    """Entry point: maps the kgqa error family to exit codes in one place.

    Click handles usage errors (exit 2) and ``typer.Exit`` codes itself in standalone mode; the
    kgqa errors it lets through are turned into a one-line message and an exit code here.
    """
    try:
        app()
    except GraphUnavailable as exc:
        # Clients never see the driver's text (it names the server); the local operator does.
        cause = f" [dim]({escape(str(exc.__cause__))})[/]" if exc.__cause__ is not None else ""
        err.print(f"[red]error[/] {escape(str(exc))}{cause}")
        sys.exit(EXIT_UNAVAILABLE)
    except StaleEdit as exc:
        err.print(f"[red]error[/] {exc}")
        sys.exit(EXIT_STALE_EDIT)
    except KgqaError as exc:
        err.print(f"[red]error[/] {exc}")
        sys.exit(1)
