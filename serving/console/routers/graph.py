"""Graph (role reader): documents -> sections -> clauses, and one clause with its provenance.

A clause page shows the version asked for (the active one by default) with its text (the quoted
span of a citation highlighted when the chip passed it), document, section path, pages, triples,
references in and out, its version history with a character diff between consecutive versions,
and, for auditors, the answers that cited any version of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from kg.reader import ClauseVersionInfo
from serving.console.deps import ConsoleDep, ReaderDep, ServiceDep
from serving.console.diff import Segment, char_diff, highlight
from serving.console.web import PREFIX, ConsoleRoute, role_at_least
from serving.types import Role

router = APIRouter(prefix=PREFIX + "/graph", route_class=ConsoleRoute, include_in_schema=False)


@dataclass
class HistoryEntry:
    """One version of a clause, with its changes and the diff from the version before it."""

    version: int
    status: str
    created_at: str
    changes: list[dict[str, Any]]
    diff: list[Segment]


def _history(rows: list[ClauseVersionInfo]) -> list[HistoryEntry]:
    out: list[HistoryEntry] = []
    previous: str | None = None
    for h in rows:
        out.append(
            HistoryEntry(
                version=h.version,
                status=h.status or "",
                created_at=str(h.created_at or ""),
                changes=[{"seq": c.seq, "op": c.op, "at": c.at, "actor": c.actor} for c in h.changes],
                diff=char_diff(previous, h.text) if previous is not None else [],
            )
        )
        previous = h.text
    return list(reversed(out))  # newest first


@router.get("")
def documents(request: Request, console: ConsoleDep, service: ServiceDep, session: ReaderDep) -> Response:
    return console.render(request, "graph.html", session, documents=service.list_documents(session.caller))


@router.get("/document")
def document(
    request: Request, console: ConsoleDep, service: ServiceDep, session: ReaderDep, id: str
) -> Response:
    outline = service.document_outline(id, session.caller)
    return console.render(request, "document.html", session, outline=outline)


@router.get("/clause")
def clause(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: ReaderDep,
    id: str,
    version: int = 0,
    start: int | None = None,
    end: int | None = None,
) -> Response:
    view = service.get_clause(id, version or None, session.caller)
    citing = (
        service.list_answers_citing(id, session.caller, 50) if role_at_least(session, Role.AUDITOR) else None
    )
    return console.render(
        request,
        "clause.html",
        session,
        view=view,
        text=highlight(view.text or "", start, end),
        quoted=start is not None and end is not None,
        history=_history(view.history),
        citing=citing,
        editable=role_at_least(session, Role.EDITOR)
        and getattr(request.app.state, "edits", None) is not None
        and view.version == max((h.version for h in view.history), default=view.version),
    )
