"""Fixtures of the console tests: the sample manuals in the session's Neo4j, the real QAService, and
``start_servers`` on port 0 with one API key per role (see console_env.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from console_env import CHAIN_STEP, CHROMIUM, CHROMIUM_FLAGS, MANUALS, serving


@pytest.fixture(scope="module")
def console_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console-home")


@pytest.fixture(scope="module")
def console_settings(neo4j_server, console_home):
    from kgqa.settings import Settings

    return Settings(neo4j_uri=neo4j_server.bolt_uri, home=console_home)


@pytest.fixture(scope="module")
def manuals_ingested(neo4j_driver, console_settings):
    from kgqa.wiring import build_ingest_service

    # A fresh graph per module: the test Neo4j is shared by every file one test process runs, and
    # another file may have left the same manuals ingested from another path (a changed copy).
    with neo4j_driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS").consume()
    report = build_ingest_service(console_settings, neo4j_driver).ingest([MANUALS])
    assert report.ok, report.failed
    return report


@pytest.fixture(scope="module")
def console_service(neo4j_driver, console_settings, manuals_ingested):
    from kgqa.wiring import build_qa_service

    return build_qa_service(console_settings, neo4j_driver)


@pytest.fixture(scope="module")
def base_url(console_service) -> Iterator[str]:
    from serving.console import ConsoleConfig

    with serving(console_service, console=ConsoleConfig(chain_step=CHAIN_STEP)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium, headless, driven by Playwright (never a browser Playwright downloads)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed; `make system-deps` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        yield chromium
        chromium.close()
