"""The web console: server-rendered pages for readers, auditors and admins, under ``/console``.

Mounted on the REST app by :func:`mount_console` (one call in ``serving.http.app.create_app``);
it calls the same :class:`~serving.service.QAService` as gRPC and REST. Pages are Jinja2
templates, made interactive with htmx (vendored under ``static/``, nothing from a CDN); sign-in
is with an API key, kept as a server-side session behind a signed HttpOnly, SameSite=Strict
cookie (``sessions.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from serving.console.config import ConsoleConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from serving.console.web import Console


def mount_console(app: FastAPI, config: ConsoleConfig | None = None) -> Console:
    """Add the console's routes and static files to ``app`` (which has ``state.service`` and
    ``state.keyring``); returns the console (its session store) for tests.

    The routes are imported here, not at the package's import, because they use the REST
    transport's error mapping (``serving.http``), which itself mounts the console.
    """
    from fastapi.staticfiles import StaticFiles

    from serving.console.routers import ask, audit, auth, edit, graph, jobs, models
    from serving.console.web import PREFIX, Console

    console = Console(config or ConsoleConfig(), redact=app.state.service.storable_question)
    app.state.console = console
    for module in (auth, ask, audit, graph, edit, models, jobs):
        app.include_router(module.router)
    app.mount(
        PREFIX + "/static", StaticFiles(packages=[("serving.console", "static")]), name="console-static"
    )
    return console


__all__ = ["Console", "ConsoleConfig", "mount_console"]
