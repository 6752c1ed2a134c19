"""Shared by the console tests: the sample manuals in the graph, keys per role, a real server.

The server is ``start_servers`` on port 0 over the real QAService and the session's Neo4j with
``samples/manuals`` ingested; the browser is Debian's chromium (``/usr/bin/chromium``) driven
by Playwright, never a browser Playwright downloads.
"""

from __future__ import annotations

import re
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

READER_KEY = "console-reader-key-0001"
AUDITOR_KEY = "console-auditor-key-0001"
ADMIN_KEY = "console-admin-key-0001"

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
