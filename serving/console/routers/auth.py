"""Sign-in with an API key, sign-out, and the console's front door."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from kgqa.errors import Unauthenticated
from serving.auth import KeyRing
from serving.console.deps import ConsoleDep, CsrfDep
from serving.console.sessions import LOGIN_COOKIE, LOGIN_TOKEN_TTL_S, SESSION_COOKIE
from serving.console.web import PREFIX, Console, ConsoleRoute, current_session_or_none

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _safe_next(value: str | None, root: str) -> str:
    """Where to go after sign-in: a console path only (never another site: no open redirect)."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value:
        return root + value
    return root + PREFIX + "/ask"


def _secure(console: Console, request: Request) -> bool:
    if console.config.cookie_secure is not None:
        return console.config.cookie_secure
    return request.url.scheme == "https"


def _login_page(
    console: Console, request: Request, next_path: str, error: str | None = None, status_code: int = 200
) -> Response:
    token, cookie = console.sessions.login_token()
    response = console.render(
        request, "login.html", None, status_code=status_code, login_token=token, next=next_path, error=error
    )
    response.set_cookie(
        LOGIN_COOKIE,
        cookie,
        max_age=LOGIN_TOKEN_TTL_S,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(console, request),
    )
    return response


@router.get("")
@router.get("/")
def home(request: Request, console: ConsoleDep) -> Response:
    session = current_session_or_none(request)
    root = request.scope.get("root_path", "")
    return RedirectResponse(root + PREFIX + ("/ask" if session else "/login"), status_code=303)


@router.get("/login")
def login_form(request: Request, console: ConsoleDep, next: str = "") -> Response:
    return _login_page(console, request, next)


@router.post("/login")
def login(
    request: Request,
    console: ConsoleDep,
    api_key: Annotated[str, Form()] = "",
    login_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    if not console.sessions.check_login_token(request.cookies.get(LOGIN_COOKIE), login_token):
        return _login_page(
            console, request, next, "The sign-in form expired; please sign in again.", status_code=403
        )
    keyring: KeyRing = request.app.state.keyring
    try:
        caller = keyring.authenticate(api_key.strip())
    except Unauthenticated:
        return _login_page(console, request, next, "That API key is not valid.", status_code=401)
    # A fresh session id at every sign-in (no fixation); the old one, if any, ends here.
    console.sessions.delete(request.cookies.get(SESSION_COOKIE))
    _, cookie = console.sessions.create(caller)
    response = RedirectResponse(_safe_next(next, request.scope.get("root_path", "")), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(console, request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
    return response


@router.post("/logout")
def logout(request: Request, console: ConsoleDep, session: CsrfDep) -> Response:
    console.sessions.delete(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse(request.scope.get("root_path", "") + PREFIX + "/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response
