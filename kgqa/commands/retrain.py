"""`kgqa retrain` (incremental retraining of the active adapter) and `kgqa jobs list|show|cancel|resume|approve`.

``kgqa retrain`` runs the job in this process (the CLI is its worker; ``--detach`` starts a worker
process instead and returns the job id). ``kgqa jobs run JOB_ID`` is the worker the servers
start; ``kgqa jobs resume JOB_ID`` runs a job whose worker was killed from its last finished stage.
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from kgqa.commands.common import JsonOpt, load_settings, out, print_json

if TYPE_CHECKING:
    from kg.jobs import Job
    from serving.jobs import JobsService

jobs_app = typer.Typer(
    help="Background jobs (incremental retraining): list, show, cancel, resume.", no_args_is_help=True
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Retrain config (default: KGQA_RETRAIN_CONFIG or retrain.yaml)."),
]


def _caller():
    from serving.types import Caller, Role

    return Caller(key_id=f"cli:{getpass.getuser()}", role=Role.ADMIN)


def _service(settings, driver, config: Path | None = None):
    from kgqa.wiring import build_jobs_service, build_retrain_runner

    service = build_jobs_service(settings, driver)
    if config is not None:
        service.retrainer = build_retrain_runner(settings, driver, config)
    return service


def _on_job(op: Callable[[JobsService], Job]) -> Job:
    """One JobsService call from the command line, on a driver opened for it."""
    from kgqa.wiring import build_driver

    settings = load_settings()
    with build_driver(settings) as driver:
        return op(_service(settings, driver))


def _print_job(job, as_json: bool) -> None:
    if as_json:
        print_json(job.to_dict())
        return
    out.print(f"{job.job_id}  {job.state.value}  stage={job.stage or '-'}  progress={job.progress:.0%}")
    out.print(f"  since graph version {job.since_graph_version}; done: {', '.join(job.stages_done) or '-'}")
    for stage in ("dataset", "train", "evaluate", "register", "activate"):
        part = job.result.get(stage)
        if not part:
            continue
        if stage == "dataset":
            out.print(
                f"  pairs generated {part['pairs_generated']}, training set {part['training_set']['train']}"
            )
        elif stage == "train":
            out.print(f"  trained {part['steps']} steps in {part['seconds']} s")
        elif stage == "evaluate":
            g = part["gate"]
            out.print(
                f"  gate {'passed' if g['passed'] else 'FAILED'} (margin {g['margin']}): {len(g['failures'])} failure(s)"
            )
        elif stage == "register":
            out.print(
                f"  registered {part['model_id']} (parent {part['parent_id']}, graph v{part['graph_version']})"
            )
        elif stage == "activate":
            out.print(f"  activated: {part.get('activated') or '-'} {part.get('reason') or ''}")
    if job.error:
        out.print(f"  error: {job.error}")


def _exit_for(job) -> None:
    from kg.jobs import JobState

    if job.state in (JobState.FAILED, JobState.CANCELLED):
        raise typer.Exit(1)


def retrain_command(
    since: Annotated[
        int | None, typer.Option(help="Graph version the delta starts after (default: the active model's).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be regenerated; train nothing.")
    ] = False,
    detach: Annotated[bool, typer.Option(help="Run in a worker process and return the job id.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retrain the active adapter on what changed in the graph since it was trained."""
    from kgqa.wiring import build_driver, build_retrain_runner

    settings = load_settings()
    with build_driver(settings) as driver:
        runner = build_retrain_runner(settings, driver, config)
        if dry_run:
            plan = runner.plan(since)
            if as_json:
                print_json(plan.to_dict())
                return
            out.print(
                f"since graph version {plan.since} (now {plan.graph_version}), continuing {plan.parent_model_id}:"
            )
            out.print(f"  regenerate {len(plan.changed)} changed and {len(plan.new)} new clause(s)")
            for cid in [*plan.changed, *plan.new]:
                out.print(f"    {cid}")
            out.print(f"  refusals for {len(plan.retired)} retired clause(s)")
            for cid in plan.retired:
                out.print(f"    {cid}")
            out.print(f"  {plan.old_pairs_touched} pair(s) of the active model's dataset are replaced")
            return
        if detach:
            job = _service(settings, driver, config).start_retrain(_caller(), since)
        else:
            job = runner.run(runner.create(since, _caller().key_id).job_id)
    _print_job(job, as_json)
    _exit_for(job)


@jobs_app.command("list")
def jobs_list(
    state: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Jobs, newest first."""
    from kgqa.wiring import build_driver

    settings = load_settings()
    with build_driver(settings) as driver:
        jobs = _service(settings, driver).list(_caller(), state, limit)
    if as_json:
        print_json([j.to_dict() for j in jobs])
        return
    table = Table(title=f"{len(jobs)} job(s)")
    for col in ("job_id", "state", "stage", "progress", "since", "created"):
        table.add_column(col, overflow="fold")
    for j in jobs:
        table.add_row(
            j.job_id,
            j.state.value,
            j.stage or "-",
            f"{j.progress:.0%}",
            str(j.since_graph_version),
            j.created_at,
        )
    out.print(table)


@jobs_app.command("show")
def jobs_show(job_id: str, as_json: JsonOpt = False) -> None:
    """One job: state, stage, what each finished stage reported."""
    _print_job(_on_job(lambda jobs: jobs.get(_caller(), job_id)), as_json)


@jobs_app.command("cancel")
def jobs_cancel(job_id: str, as_json: JsonOpt = False) -> None:
    """Ask a job to stop (at once when its worker is gone)."""
    _print_job(_on_job(lambda jobs: jobs.cancel(_caller(), job_id)), as_json)


@jobs_app.command("approve")
def jobs_approve(job_id: str, as_json: JsonOpt = False) -> None:
    """Activate the model of a job that waits for approval (its regression gate failed)."""
    _print_job(_on_job(lambda jobs: jobs.approve(_caller(), job_id)), as_json)


@jobs_app.command("resume")
def jobs_resume(
    job_id: str,
    detach: Annotated[bool, typer.Option(help="Resume in a worker process and return.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a job whose worker was killed again, from its last finished stage."""
    from kgqa.errors import JobStateError
    from kgqa.wiring import build_driver, build_jobs_service, build_retrain_runner

    settings = load_settings()
    with build_driver(settings) as driver:
        if detach:
            job = build_jobs_service(settings, driver).resume(_caller(), job_id)
        else:
            from serving.jobs import worker_alive

            runner = build_retrain_runner(settings, driver, config)
            job = runner.store.get(job_id)
            if worker_alive(job) and job.state.value in ("queued", "running"):
                raise JobStateError(f"job {job_id} still has a worker (pid {job.worker_pid})")
            job = runner.run(job_id)
    _print_job(job, as_json)
    _exit_for(job)


@jobs_app.command("run", hidden=True)
def jobs_run(job_id: str, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The worker: run (or resume) one job to its end."""
    from kgqa.wiring import build_driver, build_retrain_runner

    settings = load_settings()
    with build_driver(settings) as driver:
        job = build_retrain_runner(settings, driver, config).run(job_id)
    _print_job(job, as_json)
    _exit_for(job)


__all__ = ["jobs_app", "retrain_command"]
