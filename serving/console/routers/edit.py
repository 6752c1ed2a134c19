"""Edit (role editor): a clause's text, its triples, and reverts of its Changes.

Every route here needs role editor, checked on the server (readers and auditors get 403 whatever
the page showed), and every post the session's CSRF token. The edits themselves are
:class:`serving.edits.EditService`'s, the same calls as gRPC, REST and the CLI:

- a clause text edit carries the version the editor read; "Check" (an htmx partial) shows the
  change as a character diff and its impact before anything is saved; a stale save (someone
  saved meanwhile) answers 409 with a merge view: the editor's text beside the current one, the
  diff between them, and the form again against the current version;
- a triple correction is checked against the clause text like the service checks it
  (``kg.edit_checks.unstated_values``); an unsupported value is refused (422, the objection
  named) unless the editor ticks ``force``, which stores it as an editor's assertion with the
  edit's reason;
- confirm, reject and revert take a reason and go back to the clause page.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from kg.edit_checks import unstated_values
from kg.reader import ClauseView, TripleView
from kgqa.errors import InvalidArgument, NotFound, StaleEdit, UnsupportedValue
from serving.console.deps import ConsoleDep, EditorCsrfDep, EditorDep, EditsDep, ServiceDep
from serving.console.diff import char_diff
from serving.console.sessions import ConsoleSession
from serving.console.web import PREFIX, ConsoleRoute
from serving.edits import triple_values

router = APIRouter(prefix=PREFIX + "/edit", route_class=ConsoleRoute, include_in_schema=False)

TextField = Annotated[str, Form()]


def _clause_page(request: Request, clause_id: str) -> RedirectResponse:
    root = request.scope.get("root_path", "") + PREFIX
    return RedirectResponse(f"{root}/graph/clause?id={quote(clause_id, safe='')}", status_code=303)


def _triple_of(view: ClauseView, triple_id: str) -> TripleView:
    for t in view.triples:
        if t.triple_id == triple_id:
            return t
    raise NotFound(f"triple {triple_id!r} is not stated in the active version of {view.clause_id}")


# -- clause text ------------------------------------------------------------------------------
@router.get("/clause")
def clause_form(
    request: Request, console: ConsoleDep, service: ServiceDep, session: EditorDep, edits: EditsDep, id: str
) -> Response:
    view = service.get_clause(id, None, session.caller)
    return console.render(
        request, "edit_clause.html", session, view=view, text=view.text, reason="", expected=view.version
    )


@router.post("/clause/check")
def clause_check(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: EditorCsrfDep,
    edits: EditsDep,
    clause_id: TextField,
    text: TextField = "",
    expected_version: Annotated[int, Form()] = 0,
) -> Response:
    """The proposed change and what it touches, before saving (an htmx partial)."""
    view = service.get_clause(clause_id, None, session.caller)
    return console.render(
        request,
        "_edit_check.html",
        session,
        view=view,
        diff=char_diff(view.text or "", text.strip()),
        unchanged=text.strip() == (view.text or "").strip(),
        stale=expected_version != view.version,
        impact=edits.impact(session.caller, clause_id),
        citing=service.list_answers_citing(clause_id, session.caller, 50),
    )


@router.post("/clause")
def clause_save(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: EditorCsrfDep,
    edits: EditsDep,
    clause_id: TextField,
    text: TextField = "",
    reason: TextField = "",
    expected_version: Annotated[int, Form()] = 0,
) -> Response:
    try:
        edits.edit_clause_text(session.caller, clause_id, text, expected_version, reason)
    except StaleEdit as exc:
        current = service.get_clause(clause_id, None, session.caller)
        return console.render(
            request,
            "edit_merge.html",
            session,
            status_code=409,
            view=current,
            text=text,
            reason=reason,
            seen=exc.expected_version,
            expected=current.version,
            diff=char_diff(current.text or "", text.strip()),
        )
    except InvalidArgument as exc:
        view = service.get_clause(clause_id, None, session.caller)
        return console.render(
            request, "edit_clause.html", session, status_code=422, view=view, text=text, reason=reason,
            expected=expected_version, error=str(exc),
        )  # fmt: skip
    return _clause_page(request, clause_id)


# -- triples ----------------------------------------------------------------------------------
def _triple_page(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: ConsoleSession,
    edits: EditsDep,
    clause_id: str,
    triple_id: str,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    reason: str = "",
    objection: list[str] | None = None,
    error: str = "",
) -> Response:
    view = service.get_clause(clause_id, None, session.caller)
    triple = _triple_of(view, triple_id)
    _, rev = edits.current_version(session.caller, triple_id)
    values = values or {"subject": triple.subject, "predicate": triple.predicate, "object": triple.object}
    return console.render(
        request, "edit_triple.html", session, status_code=status_code, view=view, triple=triple, rev=rev,
        values=values, reason=reason, objection=objection, error=error,
    )  # fmt: skip


@router.get("/triple")
def triple_form(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: EditorDep,
    edits: EditsDep,
    id: str,
    clause: str,
) -> Response:
    return _triple_page(request, console, service, session, edits, clause, id)


@router.post("/triple/check")
def triple_check(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: EditorCsrfDep,
    edits: EditsDep,
    clause_id: TextField,
    subject: TextField = "",
    object: TextField = "",
) -> Response:
    """The verifier's objection to the corrected values, before saving (an htmx partial)."""
    view = service.get_clause(clause_id, None, session.caller)
    missing = unstated_values(subject.strip(), object.strip(), {}, view.text or "")
    return console.render(request, "_triple_check.html", session, objection=missing)


@router.post("/triple/correct")
def triple_correct(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: EditorCsrfDep,
    edits: EditsDep,
    clause_id: TextField,
    triple_id: TextField,
    subject: TextField = "",
    predicate: TextField = "",
    object: TextField = "",
    reason: TextField = "",
    expected_version: Annotated[int, Form()] = 0,
    force: Annotated[bool, Form()] = False,
) -> Response:
    """Correct a triple's values (its qualifiers are cleared: they described the old value)."""
    values = {"subject": subject, "predicate": predicate, "object": object}
    objection: list[str] | None = None
    try:
        edits.correct_triple(
            session.caller,
            triple_id,
            triple_values(subject, predicate, object),
            expected_version,
            reason,
            force,
        )
    except UnsupportedValue as exc:
        status_code, error, objection = 422, str(exc), exc.values
    except StaleEdit as exc:
        status_code = 409
        error = (
            f"Someone changed this triple since you opened it (now revision {exc.current_version}). "
            "Its current values are below the form; check your values and save again."
        )
    except InvalidArgument as exc:
        status_code, error = 422, str(exc)
    else:
        return _clause_page(request, clause_id)
    return _triple_page(
        request, console, service, session, edits, clause_id, triple_id, status_code=status_code,
        values=values, reason=reason, objection=objection, error=error,
    )  # fmt: skip


@router.post("/triple/confirm")
def triple_confirm(
    request: Request,
    session: EditorCsrfDep,
    edits: EditsDep,
    clause_id: TextField,
    triple_id: TextField,
    reason: TextField = "",
    expected_version: Annotated[int, Form()] = 0,
) -> Response:
    edits.confirm_triple(session.caller, triple_id, expected_version, reason)
    return _clause_page(request, clause_id)


@router.post("/triple/reject")
def triple_reject(
    request: Request,
    session: EditorCsrfDep,
    edits: EditsDep,
    clause_id: TextField,
    triple_id: TextField,
    reason: TextField = "",
    expected_version: Annotated[int, Form()] = 0,
) -> Response:
    edits.reject_triple(session.caller, triple_id, expected_version, reason)
    return _clause_page(request, clause_id)


# -- revert -----------------------------------------------------------------------------------
@router.post("/revert")
def revert(
    request: Request,
    session: EditorCsrfDep,
    edits: EditsDep,
    clause_id: TextField,
    seq: Annotated[int, Form()] = 0,
    reason: TextField = "",
) -> Response:
    """Undo one Change of the clause's history as a new Change (409 if a later one depends on it)."""
    edits.revert(session.caller, seq, reason)
    return _clause_page(request, clause_id)
