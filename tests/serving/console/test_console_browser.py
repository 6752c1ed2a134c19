"""The web console in a real browser: Debian's chromium (headless, driven by Playwright) against a
real server (``start_servers`` on port 0), the real QAService and Neo4j with the sample manuals.

Each test saves screenshots under its own tmp dir, fails on any browser console error, and checks
that the browser fetched nothing from anywhere but the server (no CDN).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from console_env import (
    ADMIN_KEY,
    AUDITOR_KEY,
    CHAIN_STEP,
    CHROMIUM,
    QUESTION,
    READER_KEY,
    Tab,
    open_tab_at,
    sign_in,
)

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

# Every form control must have an accessible name: a <label>, aria-label or aria-labelledby
# (buttons: their text). Returns the controls that have none.

# The text of a diff without its <ins> (the old side) or without its <del> (the new side).
DIFF_SIDE_JS = """(el, drop) => { const c = el.cloneNode(true);
  c.querySelectorAll(drop).forEach(n => n.remove()); return c.textContent; }"""


def _nav(page, name: str):
    """A link of the console's navigation bar."""
    return page.get_by_role("navigation", name="Console sections").get_by_role("link", name=name, exact=True)


@pytest.fixture
def open_tab(browser, base_url, tmp_path) -> Iterator[Callable[[str | None], Tab]]:
    tabs: list[Tab] = []

    def open_(key: str | None) -> Tab:
        tab = open_tab_at(browser, base_url, tmp_path, key)
        tabs.append(tab)
        return tab

    yield open_
    for tab in tabs:
        tab.page.context.close()


@dataclass
class Asked:
    answer_id: str
    chip_href: str
    quote: str
    clause_id: str
    version: int
    doc_id: str


@pytest.fixture(scope="module")
def reader_answer(browser, base_url, tmp_path_factory) -> Asked:
    """A reader asks with the keyboard only; the answer streams in over server-sent events."""
    tab = open_tab_at(browser, base_url, tmp_path_factory.mktemp("reader-ask"), READER_KEY)
    page = tab.page
    try:
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")  # to the main content
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "question"
        page.keyboard.type(QUESTION)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Ask"
        with page.expect_response(lambda r: "/console/ask/stream" in r.url) as streamed:
            page.keyboard.press("Enter")
        assert streamed.value.headers["content-type"].startswith("text/event-stream")
        answer = page.locator("article#answer")
        answer.wait_for(timeout=60_000)
        assert "Verified" in answer.locator(".status").first.inner_text()
        tab.shot("answer")
        chip = answer.locator(".answer-text a.chip").first
        href = chip.get_attribute("href")
        params = parse_qs(urlparse(href).query)
        quote = answer.locator("ol.citations blockquote").first.inner_text()
        tab.check_clean()
        doc_id = params["id"][0].split("/")[0]
        return Asked(
            answer_id=answer.get_attribute("data-answer-id"),
            chip_href=href,
            quote=quote,
            clause_id=params["id"][0],
            version=int(params["version"][0]),
            doc_id=doc_id,
        )
    finally:
        page.context.close()


def test_reader_asks_and_a_citation_opens_the_clause_with_the_quote_highlighted(reader_answer, open_tab):
    assert reader_answer.answer_id and reader_answer.quote
    tab = open_tab(READER_KEY)
    page = tab.page
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_role("button", name="Ask").click()
    chip = page.locator("article#answer .answer-text a.chip").first
    chip.wait_for(timeout=60_000)
    chip.focus()
    page.keyboard.press("Enter")  # a chip is a link: the keyboard opens it
    page.wait_for_url("**/console/graph/clause?**")
    mark = page.locator(".clause-text mark")
    assert mark.inner_text() == reader_answer.quote
    facts = page.locator("dl.facts").inner_text()
    assert reader_answer.clause_id in facts and "Pages" in facts and "Version" in facts
    assert "费用报销操作指引" in page.locator("h1").inner_text()
    assert tab.unlabelled() == []
    tab.shot("citation")
    tab.check_clean()


def test_auditor_finds_the_answer_and_sees_the_cited_version_and_its_diff_after_the_clause_changed(
    reader_answer, open_tab, manuals_ingested, console_settings, console_service, neo4j_driver
):
    from kgqa.wiring import build_edit_service
    from serving.types import Caller, Role

    # An editor changes the cited clause (the edit API the console's Edit page posts to): a new
    # version of the clause; the answer keeps citing the version it was given.
    editor = Caller("test-editor", Role.EDITOR)
    edits = build_edit_service(console_settings, neo4j_driver)
    before = console_service.get_clause(reader_answer.clause_id, None, editor)
    assert before.version == reader_answer.version and "费用发生后三十日内" in before.text
    edit = edits.edit_clause_text(
        editor,
        reader_answer.clause_id,
        before.text.replace("费用发生后三十日内", "费用发生后十五日内"),
        before.version,
        "报销时限改为十五日（测试）",
    )
    assert edit.version == reader_answer.version + 1
    try:
        tab = open_tab(AUDITOR_KEY)
        page = tab.page
        _nav(page, "Audit").click()
        page.get_by_label("Cited clause").fill(reader_answer.clause_id)
        page.get_by_label("Status").select_option("VERIFIED")
        page.get_by_role("button", name="Filter").click()
        page.wait_for_url("**/console/audit?**")
        assert tab.unlabelled() == []
        row_link = page.locator(f'a[href$="/audit/answers/{reader_answer.answer_id}"]')
        assert row_link.count() == 1
        tab.shot("audit-list")
        row_link.click()
        page.wait_for_url(f"**/audit/answers/{reader_answer.answer_id}")
        trace = page.locator("section.trace").filter(has_text=f"cited version {reader_answer.version}").first
        assert trace.locator(".clause-text mark").inner_text() == reader_answer.quote
        assert "三十日" in trace.locator(".clause-text").inner_text()
        diff = trace.locator(".diff")
        # the diff's unchanged and deleted runs read as the text then; unchanged and inserted, as now
        old_text = diff.evaluate(DIFF_SIDE_JS, "ins")
        new_text = diff.evaluate(DIFF_SIDE_JS, "del")
        assert "费用发生后三十日内" in old_text and "费用发生后十五日内" in new_text
        assert diff.locator("del").count() >= 1 and diff.locator("ins").count() >= 1
        assert f"{reader_answer.version + 1}" in trace.inner_text()
        facts = page.locator("dl.facts").inner_text()
        assert "Model version" in facts and "Graph version" in facts
        tab.shot("audit-answer")

        _ask_more_than_a_chain_step(console_service)
        _nav(page, "Audit").click()
        page.get_by_role("link", name="Verify the chain").click()
        page.locator("#chain-result p").wait_for()  # the steps ran one after the other, then the verdict
        verdict = page.locator("#chain-result").inner_text()
        assert "Chain intact" in verdict
        assert int(verdict.split(":", 1)[1].split("records", 1)[0]) > CHAIN_STEP  # more than one step
        tab.shot("audit-chain")

        export = page.request.get(
            f"/console/audit/export.csv?clause_id={reader_answer.clause_id}&status=VERIFIED"
        )
        assert export.status == 200 and export.headers["content-type"].startswith("text/csv")
        body = export.body().decode("utf-8-sig")
        assert body.splitlines()[0].startswith("seq,at,answer_id") and reader_answer.answer_id in body
        tab.check_clean()
    finally:
        # the editor reverts the edit, so the module's other tests see the manual as it was
        edits.revert(editor, edit.seq, "测试结束，恢复原文")


def test_a_reader_sees_no_auditor_or_admin_page_and_the_server_refuses_them(open_tab, base_url):
    tab = open_tab(READER_KEY)
    page = tab.page
    nav = page.get_by_role("navigation", name="Console sections").inner_text()
    assert "Ask" in nav and "Graph" in nav and "Audit" not in nav and "Models" not in nav
    response = page.goto("/console/audit")
    assert response.status == 403 and "Not allowed" in page.locator("h1").inner_text()
    tab.shot("reader-403")
    response = page.goto("/console/models")
    assert response.status == 403
    # console errors for the two 403 documents are the browser reporting the status: expected here
    tab.errors = [e for e in tab.errors if "403" not in e]
    tab.check_clean()

    # The same with plain HTTP: the refusal is the server's, not a hidden link.
    with httpx.Client(base_url=base_url, follow_redirects=False) as client:
        assert client.get("/console/audit").status_code == 303  # not signed in: to the sign-in page
        assert sign_in(client, READER_KEY).status_code == 303
        for path in (
            "/console/audit",
            "/console/audit/export.csv",
            "/console/audit/chain",
            "/console/audit/answers/any",
            "/console/models",
            "/console/models/compare",
        ):
            assert client.get(path).status_code == 403, path
        page_html = client.get("/console/ask").text
        csrf = page_html.split('name="csrf_token" value="')[1].split('"')[0]
        assert client.post("/console/models/deactivate", data={"csrf_token": csrf}).status_code == 403
        assert client.get("/console/graph").status_code == 200


def test_sign_out_ends_the_session_on_the_server(open_tab, base_url):
    tab = open_tab(AUDITOR_KEY)
    page = tab.page
    cookie = next(c for c in page.context.cookies() if c["name"] == "kgqa_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")
    tab.shot("signed-out")
    with httpx.Client(base_url=base_url, follow_redirects=False) as client:
        client.cookies.set("kgqa_console", cookie["value"], path="/console")
        assert client.get("/console/audit").status_code == 303  # the old cookie is worth nothing
    tab.check_clean()


def test_graph_browses_documents_sections_and_clauses_with_history(open_tab):
    tab = open_tab(AUDITOR_KEY)
    page = tab.page
    _nav(page, "Graph").click()
    page.get_by_role("link", name="项目部费用报销操作指引（2025年版）").click()
    page.wait_for_url("**/graph/document?**")
    first = page.locator("ul.clauses a").first
    first.click()
    page.wait_for_url("**/graph/clause?**")
    headings = page.locator("h2").all_inner_texts()
    for heading in ("Text", "Triples", "References", "Version history", "Answers that cited this clause"):
        assert heading in headings
    assert tab.unlabelled() == []
    tab.shot("clause")
    tab.check_clean()


def test_admin_activates_and_deactivates_a_registered_model(open_tab, neo4j_driver):
    from kg.registry import ModelRegistry, ModelVersion

    registry = ModelRegistry(neo4j_driver)
    tag = uuid.uuid4().hex[:8]
    parent = registry.register(
        ModelVersion(
            model_id=f"sft-{tag}-parent",
            kind="sft",
            base_path="/models/base",
            adapter_path="/runs/sft",
            graph_version=3,
            metrics={"eval:test_unseen": {"key_fact_accuracy": 0.5, "composite": 0.61}},
        )
    )
    child = registry.register(
        ModelVersion(
            model_id=f"grpo-{tag}-child",
            kind="grpo",
            base_path="/models/base",
            adapter_path="/runs/grpo",
            graph_version=3,
            parent_id=parent.model_id,
            metrics={"eval:test_unseen": {"key_fact_accuracy": 0.75, "composite": 0.7}},
        )
    )
    tab = open_tab(ADMIN_KEY)
    page = tab.page
    _nav(page, "Models").click()
    row = page.locator(f"tr#model-{child.model_id}")
    assert parent.model_id in row.inner_text() and "0.700" in row.inner_text()
    row.get_by_role("button", name=f"Activate {child.model_id}").click()
    page.wait_for_url("**/console/models")
    assert registry.active().model_id == child.model_id
    assert "Active" in page.locator(f"tr#model-{child.model_id}").inner_text()
    assert tab.unlabelled() == []
    tab.shot("models")

    page.get_by_label(f"Compare {parent.model_id}").check()
    page.get_by_label(f"Compare {child.model_id}").check()
    page.get_by_role("button", name="Compare the chosen models").click()
    page.wait_for_url("**/models/compare?**")
    table = page.locator("table.numbers").first.inner_text()
    assert "key_fact_accuracy" in table and "+0.25" in table
    tab.shot("compare")

    _nav(page, "Models").click()
    page.get_by_role("button", name="Deactivate").click()
    page.wait_for_url("**/console/models")
    assert registry.active() is None
    tab.check_clean()


def test_forms_without_the_sessions_csrf_token_are_refused(base_url):
    with httpx.Client(base_url=base_url, follow_redirects=False) as client:
        assert sign_in(client, ADMIN_KEY).status_code == 303
        assert client.post("/console/models/deactivate", data={}).status_code == 403
        assert client.post("/console/models/deactivate", data={"csrf_token": "forged"}).status_code == 403
        assert client.post("/console/ask", data={"question": "x"}).status_code == 403
        assert client.post("/console/logout", data={}).status_code == 403
    with httpx.Client(base_url=base_url, follow_redirects=False) as client:
        # the sign-in form's own token: a post without the cookie it was signed for is refused
        response = client.post("/console/login", data={"api_key": ADMIN_KEY, "login_token": "x"})
        assert response.status_code == 403 and "kgqa_console" not in response.cookies
        assert sign_in(client, "not-a-key").status_code == 401


def _ask_more_than_a_chain_step(service) -> None:
    """Answers enough for the page's chain check to take several steps, appended to the chain."""
    from serving.types import Caller, Role

    for _ in range(CHAIN_STEP + 1):
        service.ask(QUESTION, 3, Caller("chain-test", Role.READER))
    assert service.audit_writer.sync(timeout=30), "the answers did not reach the chain"


def test_the_chain_check_runs_in_steps_any_request_can_continue(base_url, console_service, neo4j_driver):
    """Each step is one short request; the next one is named in the fragment, and a forged position
    makes the check fail rather than pass."""
    import re

    from kg.audit import AuditStore

    _ask_more_than_a_chain_step(console_service)
    total = AuditStore(neo4j_driver).verify_chain().checked
    hx = {"HX-Request": "true"}
    with httpx.Client(base_url=base_url, follow_redirects=False) as client:
        assert sign_in(client, AUDITOR_KEY).status_code == 303
        url, steps = "/console/audit/chain", 0
        while True:
            body = client.get(url, headers=hx).text
            steps += 1
            nxt = re.search(r'hx-get="([^"]+/audit/chain\?after=[^"]+)"', body)
            if not nxt:
                break
            assert f"of {total} records" in body and "<progress" in body
            url = nxt.group(1).replace("&amp;", "&")
        assert "Chain intact" in body and steps == -(-total // CHAIN_STEP)
        # without script the page refreshes itself to the next step: the same walk
        url, pages = "/console/audit/chain", 0
        while True:
            body = client.get(url).text
            pages += 1
            refresh = re.search(r'http-equiv="refresh" content="0; url=([^"]+)"', body)
            if not refresh:
                break
            url = refresh.group(1).replace("&amp;", "&")
        assert "Chain intact" in body and pages == steps
        forged = client.get(f"/console/audit/chain?after=1&prev={'0' * 64}", headers=hx)
        assert forged.status_code == 200 and "Chain broken" in forged.text and "record 2" in forged.text
        bad = client.get("/console/audit/chain?after=1&prev=xyz", headers=hx)
        assert bad.status_code == 422 and "64 hexadecimal" in bad.text  # InvalidArgument


def test_static_assets_are_served_from_the_package(base_url):
    with httpx.Client(base_url=base_url) as client:
        for name in ("htmx.min.js", "htmx-ext-sse.min.js", "console.css", "favicon.svg"):
            response = client.get(f"/console/static/{name}")
            assert response.status_code == 200 and len(response.content) > 100, name
    assert shutil.which("chromium") or CHROMIUM.exists()
