"""Dependencies of the console routes: the session, the role a page needs, the CSRF check.

Every route declares the least role it serves with :func:`role`; the check runs on the server for
every request, whatever the page showed. The service layer checks the role again on each call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from kgqa.errors import NotFound, PermissionDenied
from serving.console.sessions import ConsoleSession
from serving.console.web import Console, LoginRequired, current_session_or_none, get_console
from serving.edits import EditService
from serving.jobs import JobsService
from serving.service import QAService, require
from serving.types import Role

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


async def current_session(request: Request) -> ConsoleSession:
    """The live session behind the request's cookie (raises LoginRequired)."""
    session = current_session_or_none(request)
    if session is None:
        raise LoginRequired
    return session


def role(least: Role) -> Callable[[ConsoleSession], Awaitable[ConsoleSession]]:
    """A dependency: the session, when its role is at least ``least`` (else 403)."""

    async def check(session: Annotated[ConsoleSession, Depends(current_session)]) -> ConsoleSession:
        require(session.caller, least)
        return session

    return check


async def csrf_checked(
    request: Request, session: Annotated[ConsoleSession, Depends(current_session)]
) -> ConsoleSession:
    """For state-changing requests: the form's (or htmx header's) CSRF token must be the session's."""
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        token = value if isinstance(value, str) else None
    if not session.check_csrf(token):
        raise PermissionDenied(
            "this form is stale or did not come from the console; reload the page and retry"
        )
    return session


def csrf_role(least: Role) -> Callable[[ConsoleSession], Awaitable[ConsoleSession]]:
    """A dependency for state-changing posts: the CSRF token, then a role of at least ``least``
    (403 below it)."""

    async def check(session: Annotated[ConsoleSession, Depends(csrf_checked)]) -> ConsoleSession:
        require(session.caller, least)
        return session

    return check


def get_service(request: Request) -> QAService:
    return request.app.state.service


def get_edits(request: Request) -> EditService:
    """The knowledge managers' service, set on the app as ``state.edits`` by ``create_app``
    where the server serves edits (``kgqa serve`` does); else the edit pages are not there."""
    edits = getattr(request.app.state, "edits", None)
    if edits is None:
        raise NotFound("this server does not serve edits (started without the edit service)")
    return edits


def get_jobs(request: Request) -> JobsService:
    """The admin job service, set on the app as ``state.jobs`` by ``create_app`` where the server
    runs retrain jobs (``kgqa serve`` does); else the Jobs pages answer 404."""
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is None:
        raise NotFound("this server does not run jobs (started without the job service)")
    return jobs


ConsoleDep = Annotated[Console, Depends(get_console)]
ServiceDep = Annotated[QAService, Depends(get_service)]
SessionDep = Annotated[ConsoleSession, Depends(current_session)]
ReaderDep = Annotated[ConsoleSession, Depends(role(Role.READER))]
AuditorDep = Annotated[ConsoleSession, Depends(role(Role.AUDITOR))]
EditorDep = Annotated[ConsoleSession, Depends(role(Role.EDITOR))]
EditorCsrfDep = Annotated[ConsoleSession, Depends(csrf_role(Role.EDITOR))]
EditsDep = Annotated[EditService, Depends(get_edits)]
JobsDep = Annotated[JobsService, Depends(get_jobs)]
AdminDep = Annotated[ConsoleSession, Depends(role(Role.ADMIN))]
AdminCsrfDep = Annotated[ConsoleSession, Depends(csrf_role(Role.ADMIN))]
CsrfDep = Annotated[ConsoleSession, Depends(csrf_checked)]

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "AdminCsrfDep",
    "AdminDep",
    "AuditorDep",
    "ConsoleDep",
    "CsrfDep",
    "EditorCsrfDep",
    "EditorDep",
    "EditsDep",
    "JobsDep",
    "ReaderDep",
    "ServiceDep",
    "SessionDep",
    "csrf_role",
    "role",
]
