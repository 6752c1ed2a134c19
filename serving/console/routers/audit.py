"""Audit (role auditor): the answer trail filtered, one answer traced, the chain check, CSV export.

An answer's page shows each citation as it was *then* (the exact clause version the answer cited,
the quote highlighted) and a character diff from that text to the clause's text *now*, with the
model version and graph version the answer was given under.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from kg.audit import AnswerFilter, AnswerListing
from kg.evidence import EvidenceClause
from kgqa.errors import InvalidArgument
from serving.console.deps import AuditorDep, ConsoleDep, ServiceDep
from serving.console.diff import Highlight, Segment, char_diff, highlight
from serving.console.present import answer_parts
from serving.console.web import PREFIX, ConsoleRoute
from serving.service import QAService
from serving.types import AnswerStatus, Caller, Citation, CitationTrace

router = APIRouter(prefix=PREFIX + "/audit", route_class=ConsoleRoute, include_in_schema=False)

STATUSES = [s.value for s in AnswerStatus]
CSV_COLUMNS = (
    "seq",
    "at",
    "answer_id",
    "actor",
    "status",
    "model_id",
    "graph_version",
    "question",
    "cited",
)


def _utc(value: str, name: str) -> str | None:
    """A ``datetime-local`` value (read as UTC) as the ISO form answers are stored in; "" = None."""
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidArgument(f"{name} must be a date and time like 2025-01-31T09:00 (UTC)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _filter(at_from: str, at_to: str, actor: str, status: str, model_id: str, clause_id: str) -> AnswerFilter:
    if status and status not in STATUSES:
        raise InvalidArgument(f"status must be one of {', '.join(STATUSES)}")
    return AnswerFilter(
        at_from=_utc(at_from, "from"),
        at_to=_utc(at_to, "to"),
        actor=actor.strip() or None,
        status=status or None,
        model_id=model_id.strip() or None,
        clause_id=clause_id.strip() or None,
    )


@router.get("")
def audit_list(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: AuditorDep,
    at_from: str = "",
    at_to: str = "",
    actor: str = "",
    status: str = "",
    model_id: str = "",
    clause_id: str = "",
    before: int | None = None,
) -> Response:
    where = _filter(at_from, at_to, actor, status, model_id, clause_id)
    size = console.config.page_size
    rows = service.search_answers(where, session.caller, limit=size + 1, before_seq=before)
    more = len(rows) > size
    rows = rows[:size]
    form = {
        "at_from": at_from,
        "at_to": at_to,
        "actor": actor,
        "status": status,
        "model_id": model_id,
        "clause_id": clause_id,
    }
    return console.render(
        request,
        "audit.html",
        session,
        rows=rows,
        form=form,
        statuses=STATUSES,
        next_before=rows[-1].seq if more and rows else None,
        first_page=before is None,
    )


def _csv_cell(value: object) -> str:
    """A cell a spreadsheet shows as text: one starting with = + - @ or a control is quoted with '."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(service: QAService, where: AnswerFilter, caller: Caller, limit: int) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")  # spreadsheets read the Chinese text as UTF-8 with the BOM
    writer.writerow(CSV_COLUMNS)
    sent, before = 0, None
    while sent < limit:
        rows: list[AnswerListing] = service.search_answers(
            where, caller, limit=min(500, limit - sent), before_seq=before
        )
        for r in rows:
            cited = "; ".join(f"{c.clause_id}@v{c.clause_version}" for c in r.citations)
            writer.writerow(
                [
                    _csv_cell(v)
                    for v in (
                        r.seq,
                        r.at,
                        r.answer_id,
                        r.actor,
                        r.status,
                        r.model_id,
                        r.graph_version,
                        r.question,
                        cited,
                    )
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if not rows:
            return
        sent += len(rows)
        before = rows[-1].seq


@router.get("/export.csv")
def audit_export(
    console: ConsoleDep,
    service: ServiceDep,
    session: AuditorDep,
    at_from: str = "",
    at_to: str = "",
    actor: str = "",
    status: str = "",
    model_id: str = "",
    clause_id: str = "",
) -> Response:
    where = _filter(at_from, at_to, actor, status, model_id, clause_id)
    service.search_answers(where, session.caller, limit=1)  # errors (role, graph) before the 200
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        _csv_rows(service, where, session.caller, console.config.export_limit),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="kgqa-answers-{stamp}.csv"'},
    )


@dataclass
class TraceView:
    """One citation of an answer as the page shows it: the quote in the version cited then, and a
    character diff from that text to the clause's latest text when it changed."""

    citation: Citation
    then: EvidenceClause | None
    now: EvidenceClause | None
    quoted: Highlight
    diff: list[Segment]
    changed: bool


def _view(trace: CitationTrace) -> TraceView:
    then, now, c = trace.then, trace.now, trace.citation
    changed = then is not None and now is not None and (now.version != then.version or now.text != then.text)
    return TraceView(
        citation=c,
        then=then,
        now=now,
        quoted=highlight(then.text if then else "", c.quote_start, c.quote_end),
        diff=char_diff(then.text, now.text) if changed and then and now else [],
        changed=changed,
    )


@router.get("/answers/{answer_id}")
def audit_answer(
    answer_id: str, request: Request, console: ConsoleDep, service: ServiceDep, session: AuditorDep
) -> Response:
    trace = service.trace_answer(answer_id, session.caller)
    record = trace.record
    return console.render(
        request,
        "audit_answer.html",
        session,
        record=record,
        result=record.answer,
        parts=answer_parts(record.answer),
        traces=[_view(t) for t in trace.citations],
    )


@router.get("/chain")
def audit_chain(
    request: Request,
    console: ConsoleDep,
    service: ServiceDep,
    session: AuditorDep,
    after: int = 0,
    prev: str = "",
) -> Response:
    """One step of the chain check: no request grows with the trail. Each step's answer shows
    the progress and asks for the next step itself — htmx swaps the fragment in place, and without
    script the page refreshes to the next step. The position travels in the request, so any
    server process can take the next step."""
    report = service.verify_audit_chain_step(after, prev, session.caller, console.config.chain_step)
    template = "_chain.html" if request.headers.get("HX-Request") else "audit_chain.html"
    return console.render(request, template, session, report=report)
