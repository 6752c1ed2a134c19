"""Shared by the console tests: the sample manuals in the graph, keys per role, a real server.

The server is ``start_servers`` on port 0 over the real QAService and the session's Neo4j with
``samples/manuals`` ingested; the browser is Debian's chromium (``/usr/bin/chromium``) driven
by Playwright, never a browser Playwright downloads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[3]
MANUALS = REPO / "samples" / "manuals"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: Form controls without a label (buttons without text): the pages must have none.
UNLABELLED_JS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button, progress')]
  .filter(el => el.tagName === 'BUTTON'
    ? !(el.textContent.trim() || el.getAttribute('aria-label'))
    : !((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')))
  .map(el => el.outerHTML)"""

#: Records the page's chain check walks per request in these tests: small, so it takes several steps.
CHAIN_STEP = 2
READER_KEY = "console-reader-key-0001"
AUDITOR_KEY = "console-auditor-key-0001"
ADMIN_KEY = "console-admin-key-0001"
EDITOR_KEY = "console-editor-key-0001"

#: Answered from 费用报销操作指引.md (报销流程): "…应当在费用发生后三十日内…提交报销单…".
QUESTION = "经办人员应当在费用发生后多少日内提交报销单？"


def sign_in(client: httpx.Client, key: str) -> httpx.Response:
    """Sign in over plain HTTP as a browser would: the form's token, its cookie, then the post."""
    form = client.get("/console/login")
    assert form.status_code == 200
    token = re.search(r'name="login_token" value="([^"]+)"', form.text).group(1)
    return client.post("/console/login", data={"api_key": key, "login_token": token, "next": ""})


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@dataclass
class Tab:
    """One signed-in browser context and what it saw."""

    page: object
    shots: Path
    base: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def check_clean(self) -> None:
        """No console error, and every request went to our server."""
        assert self.errors == []
        foreign = [u for u in self.requests if not (u.startswith(self.base) or u.startswith("data:"))]
        assert foreign == []

    def unlabelled(self) -> list[str]:
        return self.page.evaluate(UNLABELLED_JS)


def open_tab_at(browser, base: str, shots: Path, key: str | None) -> Tab:
    """A new browser context on ``base``, signed in with ``key`` (None: signed out)."""
    context = browser.new_context(base_url=base, locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    tab = Tab(page, shots, base)
    page.on(
        "console", lambda m: tab.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda e: tab.errors.append(f"page error: {e}"))
    page.on("request", lambda r: tab.requests.append(r.url))
    if key is not None:
        page.goto("/console/login")
        page.get_by_label("API key").fill(key)
        page.keyboard.press("Enter")
        page.wait_for_url("**/console/ask")
    return tab


@contextmanager
def serving(service, **extra) -> Iterator[str]:
    """``start_servers`` on port 0 over ``service`` (and ``extra``: ``edits=``, ``jobs=``) with one
    key per role; yields the base URL and stops the servers afterwards."""
    from serving.auth import KeyRing
    from serving.server import start_servers
    from serving.types import Role

    keyring = KeyRing(
        [
            (READER_KEY, Role.READER),
            (AUDITOR_KEY, Role.AUDITOR),
            (EDITOR_KEY, Role.EDITOR),
            (ADMIN_KEY, Role.ADMIN),
        ]
    )
    running = start_servers(
        service,
        keyring,
        host="127.0.0.1",
        grpc_port=0,
        http_port=0,
        grace=1.0,
        health_interval_s=0.5,
        **extra,
    )
    try:
        yield f"http://127.0.0.1:{running.http_port}"
    finally:
        running.stop(grace=1.0)
