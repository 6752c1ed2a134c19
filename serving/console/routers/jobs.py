"""Jobs (role admin): retrain jobs listed, started (or planned: a dry run), watched and cancelled.

The operations are :class:`serving.jobs.JobsService`'s, the same calls as gRPC, REST's
``/v1/jobs`` and ``kgqa jobs``; every route needs role admin, checked on the server (readers,
auditors and editors get 403 whatever the page showed), and every post the session's CSRF token.

A job page polls its status fragment every second while the job is queued or running (htmx
``every 1s``): the progress bar and stage are swapped in place, and the buttons stay outside the
swapped part so keyboard focus is not lost. When the job's state is no longer the one the page
was rendered for, the fragment answers ``HX-Refresh`` and the page reloads with the buttons the
new state allows (Approve for a job waiting for approval; none once it has ended).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from kg.jobs import Job, JobState
from kgqa.errors import InvalidArgument, KgqaError
from serving.console.deps import AdminCsrfDep, AdminDep, ConsoleDep, JobsDep
from serving.console.sessions import ConsoleSession
from serving.console.web import PREFIX, ConsoleRoute
from serving.http.errors import http_error
from serving.jobs import JobsService

router = APIRouter(prefix=PREFIX + "/jobs", route_class=ConsoleRoute, include_in_schema=False)

#: States in which a worker may still change the job (the page polls while in them).
LIVE = (JobState.QUEUED, JobState.RUNNING)
#: States an admin may cancel (a job waiting for approval is cancelled at once).
CANCELLABLE = (JobState.QUEUED, JobState.RUNNING, JobState.WAITING_APPROVAL)


def _job_url(request: Request, job_id: str) -> str:
    return f"{request.scope.get('root_path', '')}{PREFIX}/jobs/{quote(job_id, safe='')}"


def _since(value: str) -> int | None:
    """The optional since-graph-version of the start form (blank: the active model's version)."""
    value = value.strip()
    if not value:
        return None
    try:
        since = int(value)
    except ValueError:
        raise InvalidArgument(f"since must be a graph version (a whole number), not {value!r}") from None
    if since < 0:
        raise InvalidArgument("since must be a graph version (>= 0)")
    return since


def _list_page(
    request: Request,
    console: ConsoleDep,
    jobs: JobsService,
    session: ConsoleSession,
    *,
    status_code: int = 200,
    since: str = "",
    plan: dict | None = None,
    error: str = "",
) -> Response:
    return console.render(
        request, "jobs.html", session, status_code=status_code, jobs=jobs.list(session.caller),
        since=since, plan=plan, error=error, live=LIVE,
    )  # fmt: skip


@router.get("")
def jobs_page(request: Request, console: ConsoleDep, session: AdminDep, jobs: JobsDep) -> Response:
    return _list_page(request, console, jobs, session)


@router.post("/start")
def start(
    request: Request,
    console: ConsoleDep,
    session: AdminCsrfDep,
    jobs: JobsDep,
    since: Annotated[str, Form()] = "",
    dry_run: Annotated[bool, Form()] = False,
) -> Response:
    """Start a retrain job (then its page), or with ``dry_run`` show what it would regenerate."""
    try:
        version = _since(since)
        if dry_run:
            plan = jobs.plan_retrain(session.caller, version)
            return _list_page(request, console, jobs, session, since=since, plan=plan)
        job = jobs.start_retrain(session.caller, version)
    except KgqaError as exc:  # no active model, a bad version: said on the form, not a bare error page
        error = http_error(exc)
        if error.status == 403:
            raise
        return _list_page(
            request, console, jobs, session, status_code=error.status, since=since, error=error.message
        )
    return RedirectResponse(_job_url(request, job.job_id), status_code=303)


def _job_context(job: Job) -> dict:
    return {
        "job": job,
        "live": job.state in LIVE,
        "cancellable": job.state in CANCELLABLE,
        "percent": round(job.progress * 100),
    }


@router.get("/{job_id}")
def job_page(
    request: Request, console: ConsoleDep, session: AdminDep, jobs: JobsDep, job_id: str
) -> Response:
    job = jobs.get(session.caller, job_id)
    return console.render(request, "job.html", session, **_job_context(job))


@router.get("/{job_id}/status")
def job_status(
    request: Request, console: ConsoleDep, session: AdminDep, jobs: JobsDep, job_id: str, shown: str = ""
) -> Response:
    """The polled part of a job page; ``HX-Refresh`` once the state differs from the page's."""
    job = jobs.get(session.caller, job_id)
    response = console.render(request, "_job_status.html", session, **_job_context(job))
    if shown and shown != job.state.value:
        response.headers["HX-Refresh"] = "true"
    return response


@router.post("/{job_id}/cancel")
def cancel(request: Request, session: AdminCsrfDep, jobs: JobsDep, job_id: str) -> Response:
    jobs.cancel(session.caller, job_id)
    return RedirectResponse(_job_url(request, job_id), status_code=303)


@router.post("/{job_id}/approve")
def approve(request: Request, session: AdminCsrfDep, jobs: JobsDep, job_id: str) -> Response:
    jobs.approve(session.caller, job_id)
    return RedirectResponse(_job_url(request, job_id), status_code=303)
