"""The console's plumbing: its state on ``app.state``, page rendering, and the route class that
turns errors into HTML pages.

Console pages answer errors as pages, not as the REST API's JSON: :class:`ConsoleRoute` catches
what a route raises, maps it with the REST transport's own mapping (``serving.http.errors``, so the
status codes are the API's), and renders ``error.html`` with that status. A request that is not
signed in is sent to the sign-in page instead (a ``303``, or ``HX-Redirect`` for htmx).
Every console response carries a strict Content-Security-Policy: scripts, styles and connections
only from this origin, no inline code, no frames.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from serving.console.config import ConsoleConfig
from serving.console.sessions import SESSION_COOKIE, ConsoleSession, SessionStore
from serving.http.errors import http_error
from serving.types import Role

PREFIX = "/console"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class LoginRequired(Exception):
    """No live console session: the browser is sent to the sign-in page."""


def _asset_versions() -> dict[str, str]:
    """A content hash per static file, appended to its URL so browsers never run a stale copy."""
    root = resources.files("serving.console") / "static"
    return {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:10]
        for f in root.iterdir()
        if f.is_file() and not f.name.startswith(".")
    }


@dataclass
class NavItem:
    key: str
    label: str
    path: str
    role: Role
    needs: str | None = None  # the service on ``app.state`` the page needs (hidden without it)


#: The pages in the navigation bar and the least role that may open each. Edit (editor) is not
#: here: it is reached from a clause page (Graph), where the clause to edit is.
NAV: tuple[NavItem, ...] = (
    NavItem("ask", "Ask", "/ask", Role.READER),
    NavItem("graph", "Graph", "/graph", Role.READER),
    NavItem("audit", "Audit", "/audit", Role.AUDITOR),
    NavItem("models", "Models", "/models", Role.ADMIN),
    NavItem("jobs", "Jobs", "/jobs", Role.ADMIN, needs="jobs"),
)


class Console:
    """What every console route needs: settings, sessions and templates.

    Args:
        config: session lifetimes and page sizes.
        redact: what the session store applies to questions it keeps (``QAService.storable_question``).
    """

    def __init__(self, config: ConsoleConfig, redact: Callable[[str], str] | None = None) -> None:
        self.config = config
        self.sessions = SessionStore(config, redact=redact)
        env = Environment(
            loader=PackageLoader("serving.console", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates = Jinja2Templates(env=env)
        self._assets = _asset_versions()

    def static(self, request: Request, name: str) -> str:
        root = request.scope.get("root_path", "")
        return f"{root}{PREFIX}/static/{name}?v={self._assets.get(name, '0')}"

    def _context(self, request: Request, session: ConsoleSession | None) -> dict[str, Any]:
        root = request.scope.get("root_path", "") + PREFIX
        role = session.caller.role if session else None
        return {
            "request": request,
            "session": session,
            "csrf": session.csrf if session else "",
            "role": role.name.lower() if role else "",
            "nav": [
                n
                for n in NAV
                if role is not None
                and role >= n.role
                and (n.needs is None or getattr(request.app.state, n.needs, None) is not None)
            ],
            "root": root,
            "static": lambda name: self.static(request, name),
            "q": lambda value: quote(str(value), safe=""),
            "Role": Role,
            "can": lambda least: role is not None and role >= least,
        }

    def fragment(
        self, request: Request, template: str, session: ConsoleSession | None, **context: Any
    ) -> str:
        """A template rendered to a string (for server-sent events)."""
        return self.templates.get_template(template).render({**self._context(request, session), **context})

    def render(
        self,
        request: Request,
        template: str,
        session: ConsoleSession | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """Render a page; the navigation shows only what the session's role may open."""
        context = {**self._context(request, session), **context}
        del context["request"]
        return self.templates.TemplateResponse(request, template, context, status_code=status_code)


def role_at_least(session: ConsoleSession | None, least: Role) -> bool:
    return session is not None and session.caller.role >= least


def get_console(request: Request) -> Console:
    return request.app.state.console


def current_session_or_none(request: Request) -> ConsoleSession | None:
    return get_console(request).sessions.get(request.cookies.get(SESSION_COOKIE))


def _secure_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def login_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here afterwards (only same-console paths are kept)."""
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    root = request.scope.get("root_path", "") + PREFIX
    location = f"{root}/login?next={quote(target, safe='')}"
    if request.headers.get("HX-Request"):
        return Response(status_code=200, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


class ConsoleRoute(APIRoute):
    """An APIRoute whose errors are HTML pages with the REST API's status codes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            start = time.perf_counter()
            try:
                response = await handler(request)
            except LoginRequired:
                response = login_redirect(request)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                    for e in exc.errors()
                )
                response = _error_page(request, 422, "INVALID_ARGUMENT", f"invalid request: {problems}")
            except Exception as exc:  # KgqaErrors and bugs alike: the REST mapping decides
                error = http_error(exc)
                response = _error_page(request, error.status, error.code, error.message)
            # The time to build the page (streamed bodies: until the stream starts), for browsers'
            # developer tools and bench/bench_console.py.
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
            return _secure_headers(response)

        return console_handler


def _error_page(request: Request, status: int, code: str, message: str) -> Response:
    console = get_console(request)
    session = current_session_or_none(request)
    # htmx is configured (base.html) to swap error answers too: a fragment, with the real status.
    template = "_error.html" if request.headers.get("HX-Request") else "error.html"
    return console.render(
        request, template, session, status_code=status, status=status, code=code, message=message
    )


__all__ = ["CSP", "NAV", "PREFIX", "Console", "ConsoleRoute", "LoginRequired", "get_console"]
