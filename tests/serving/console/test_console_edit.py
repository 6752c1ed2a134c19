"""The console's Edit pages in a real browser: Debian's chromium (headless, Playwright) against
``start_servers`` on port 0 with the real QAService and EditService over Neo4j and the sample
manuals.

An editor edits a clause (三十日 -> 十五日) with a reason, sees the impact before saving, saves and
finds the new version with its diff in the history, then reverts it; a stale save shows the merge
view; a triple correction whose value the clause does not state is refused with the verifier's
objection; readers and auditors are refused every edit route by the server (plain HTTP with their
own sessions and CSRF tokens). Each test saves screenshots under its tmp dir and fails on any
browser console error. The module leaves the clause's text as the manual has it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from console_env import (
    AUDITOR_KEY,
    EDITOR_KEY,
    READER_KEY,
    UNLABELLED_JS,
    Tab,
    csrf_of,
    open_tab_at,
    serving,
    sign_in,
)

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

OLD, NEW = "费用发生后三十日内", "费用发生后十五日内"

DIFF_SIDE_JS = """(el, drop) => { const c = el.cloneNode(true);
  c.querySelectorAll(drop).forEach(n => n.remove()); return c.textContent; }"""


@dataclass
class Target:
    clause_id: str
    text: str


@pytest.fixture(scope="module")
def edit_service(neo4j_driver, console_settings, manuals_ingested):
    from kgqa.wiring import build_edit_service

    return build_edit_service(console_settings, neo4j_driver)


@pytest.fixture(scope="module")
def edit_url(console_service, edit_service) -> Iterator[str]:
    with serving(console_service, edits=edit_service) as url:
        yield url


def _editor():
    from serving.types import Caller, Role

    return Caller("test-editor", Role.EDITOR)


@pytest.fixture(scope="module")
def target(console_service, edit_service) -> Iterator[Target]:
    """The clause of 报销流程 that states the thirty days; its text is put back afterwards."""
    caller = _editor()
    found = None
    for doc in console_service.list_documents(caller):
        stack = list(console_service.document_outline(doc.doc_id, caller).sections)
        while stack and found is None:
            node = stack.pop()
            stack.extend(node.children)
            for entry in node.clauses:
                view = console_service.get_clause(entry.clause_id, None, caller)
                if OLD in (view.text or ""):
                    found = Target(view.clause_id, view.text)
    assert found is not None
    yield found
    view = console_service.get_clause(found.clause_id, None, caller)
    if view.text != found.text:
        edit_service.edit_clause_text(caller, found.clause_id, found.text, view.version, "test cleanup")


@pytest.fixture
def editor_tab(browser, edit_url, tmp_path) -> Iterator[Tab]:
    tab = open_tab_at(browser, edit_url, tmp_path, EDITOR_KEY)
    yield tab
    tab.page.context.close()


def _clause(page, clause_id: str) -> None:
    page.goto(f"/console/graph/clause?id={quote(clause_id, safe='')}")


def test_editor_checks_the_impact_saves_a_clause_edit_and_reverts_it(editor_tab, target):
    page = editor_tab.page
    _clause(page, target.clause_id)
    page.get_by_role("link", name="Edit", exact=True).click()
    page.wait_for_url("**/console/edit/clause?**")
    text = page.get_by_label("Clause text")
    assert text.input_value() == target.text
    text.fill(target.text.replace(OLD, NEW))
    page.get_by_label("Reason for the change").fill("制度修订：报销期限缩短为十五日")
    page.get_by_role("button", name="Check").click()
    check = page.locator("#check")
    check.get_by_role("heading", name="Before you save").wait_for()
    diff = check.locator(".diff")
    assert OLD in diff.evaluate(DIFF_SIDE_JS, "ins") and NEW in diff.evaluate(DIFF_SIDE_JS, "del")
    assert diff.locator("del").count() >= 1 and diff.locator("ins").count() >= 1
    impact = check.locator("dl.impact").inner_text()
    for fact in ("Dataset pairs", "Stale models", "Past answers", "Index"):
        assert fact in impact
    assert page.evaluate(UNLABELLED_JS) == []
    editor_tab.shot("check")

    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/console/graph/clause?**")
    assert NEW in page.locator(".clause-text").inner_text()
    newest = page.locator("ol.history > li").first
    assert "clause.edit" in newest.inner_text()
    old_side = newest.locator(".diff").evaluate(DIFF_SIDE_JS, "ins")
    new_side = newest.locator(".diff").evaluate(DIFF_SIDE_JS, "del")
    assert OLD in old_side and NEW in new_side
    assert page.evaluate(UNLABELLED_JS) == []
    editor_tab.shot("saved")

    # Revert the edit from the history, with a reason: the manual's text is back as a new version.
    form = newest.locator("form.revert").first
    form.get_by_role("textbox").fill("撤回：制度未生效")
    form.get_by_role("button").click()
    page.wait_for_url("**/console/graph/clause?**")
    assert OLD in page.locator(".clause-text").inner_text()
    assert "clause.revert" in page.locator("ol.history > li").first.inner_text()
    editor_tab.shot("reverted")
    assert editor_tab.errors == []


def test_a_stale_save_shows_the_merge_view_and_resubmits_against_the_current_version(
    editor_tab, target, console_service, edit_service
):
    page = editor_tab.page
    page.goto(f"/console/edit/clause?id={quote(target.clause_id, safe='')}")
    seen = int(page.locator('input[name="expected_version"]').input_value())
    # someone else saves meanwhile
    theirs = target.text.replace("三个工作日内", "五个工作日内")
    assert theirs != target.text
    edit_service.edit_clause_text(_editor(), target.clause_id, theirs, seen, "另一位编辑的修改")

    mine = target.text.replace(OLD, NEW)
    page.get_by_label("Clause text").fill(mine)
    page.get_by_label("Reason for the change").fill("报销期限缩短")
    with page.expect_response(lambda r: r.url.endswith("/console/edit/clause")) as saved:
        page.get_by_role("button", name="Save").click()
    assert saved.value.status == 409
    assert "Someone saved this clause meanwhile" in page.locator("h1").inner_text()
    assert (
        "五个工作日内" in page.locator(".merge").inner_text() and NEW in page.locator(".merge").inner_text()
    )
    merge_diff = page.locator("main > .diff")
    assert merge_diff.locator("del").count() >= 1 and merge_diff.locator("ins").count() >= 1
    assert int(page.locator('input[name="expected_version"]').input_value()) == seen + 1
    assert page.get_by_label("Clause text").input_value() == mine
    assert page.evaluate(UNLABELLED_JS) == []
    editor_tab.shot("merge")

    # merge by hand (both changes) and save against the current version
    page.get_by_label("Clause text").fill(theirs.replace(OLD, NEW))
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/console/graph/clause?**")
    view = console_service.get_clause(target.clause_id, None, _editor())
    assert view.version == seen + 2 and NEW in view.text and "五个工作日内" in view.text
    editor_tab.shot("merged")
    # the browser reports the 409 document's status as a console error: expected here, nothing else
    assert [e for e in editor_tab.errors if "409 (Conflict)" not in e] == []
    edit_service.edit_clause_text(
        _editor(), target.clause_id, target.text, view.version, "back to the manual"
    )


def test_a_triple_correction_the_text_does_not_state_is_refused_with_the_objection(
    editor_tab, target, console_service, edit_service
):
    page = editor_tab.page
    view = console_service.get_clause(target.clause_id, None, _editor())
    triple = next(t for t in view.triples if t.object and t.object in ("30日", "三十日"))
    _clause(page, target.clause_id)
    page.get_by_role(
        "link", name=f"Correct, confirm or reject {triple.subject} {triple.predicate} {triple.object}"
    ).click()
    page.wait_for_url("**/console/edit/triple?**")
    page.get_by_label("Object").fill("45日")
    page.get_by_label("Reason for the correction").fill("按新规改为四十五日")
    page.get_by_role("button", name="Check").click()
    objection = page.locator("#triple-check .objection")
    objection.wait_for()
    assert "45日" in objection.inner_text()
    with page.expect_response(lambda r: r.url.endswith("/edit/triple/correct")) as saved:
        page.get_by_role("button", name="Save correction").click()
    assert saved.value.status == 422
    assert "45日" in page.locator("#triple-check .objection").inner_text()
    assert page.get_by_label("Object").input_value() == "45日"  # the editor's values stay in the form
    assert page.evaluate(UNLABELLED_JS) == []
    editor_tab.shot("objection")
    after = console_service.get_clause(target.clause_id, None, _editor())
    assert next(t for t in after.triples if t.triple_id == triple.triple_id).object == triple.object

    # "Store it anyway" (force) keeps the value as the editor's assertion, with the reason
    page.get_by_label("Store it anyway", exact=False).check()
    page.get_by_role("button", name="Save correction").click()
    page.wait_for_url("**/console/graph/clause?**")
    forced = console_service.get_clause(target.clause_id, None, _editor())
    assert next(t for t in forced.triples if t.triple_id == triple.triple_id).object == "45日"
    assert "45日" in page.locator("table.list").first.inner_text()
    changes = edit_service.history(_editor(), triple.triple_id)
    assert changes[-1].op == "triple.correct" and changes[-1].after["asserted"] is True
    edit_service.revert(_editor(), changes[-1].seq, "test: back to the extracted value")

    # confirming the triple as it is (the correction reverted), with a reason, is accepted
    page.reload()
    page.get_by_role(
        "link", name=f"Correct, confirm or reject {triple.subject} {triple.predicate} {triple.object}"
    ).click()
    page.wait_for_url("**/console/edit/triple?**")
    page.get_by_label("Reason to confirm").fill("与条文一致")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url("**/console/graph/clause?**")
    confirmed = console_service.get_clause(target.clause_id, None, _editor())
    assert next(t for t in confirmed.triples if t.triple_id == triple.triple_id).confidence == 1.0
    assert [e for e in editor_tab.errors if "422 (Unprocessable" not in e] == []


@pytest.mark.parametrize("key", [READER_KEY, AUDITOR_KEY])
def test_readers_and_auditors_are_refused_every_edit_route_by_the_server(
    key, edit_url, target, console_service
):
    before = console_service.get_clause(target.clause_id, None, _editor())
    triple = before.triples[0]
    cid = quote(target.clause_id, safe="")
    with httpx.Client(base_url=edit_url, follow_redirects=False) as client:
        assert sign_in(client, key).status_code == 303
        page = client.get(f"/console/graph/clause?id={cid}")
        assert page.status_code == 200 and "/console/edit/" not in page.text
        csrf = csrf_of(page.text)
        assert client.get(f"/console/edit/clause?id={cid}").status_code == 403
        tid = quote(triple.triple_id, safe="")
        assert client.get(f"/console/edit/triple?id={tid}&clause={cid}").status_code == 403
        form = {
            "csrf_token": csrf, "clause_id": target.clause_id, "triple_id": triple.triple_id, "text": "x",
            "reason": "r", "expected_version": "1", "seq": "1", "subject": "a", "predicate": "b", "object": "c",
        }  # fmt: skip
        for path in (
            "/console/edit/clause",
            "/console/edit/clause/check",
            "/console/edit/triple/check",
            "/console/edit/triple/correct",
            "/console/edit/triple/confirm",
            "/console/edit/triple/reject",
            "/console/edit/revert",
        ):
            assert client.post(path, data=form).status_code == 403, path
    after = console_service.get_clause(target.clause_id, None, _editor())
    assert (after.version, after.text) == (before.version, before.text)
