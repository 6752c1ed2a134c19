"""``GET /v1/clauses/{clause_id}`` and ``.../answers``: clause provenance and the answers citing it.

Clause ids contain ``/`` and CJK (``CAS-14-收入/第五条``), so both routes use the ``:path`` converter.
The ``/answers`` route is declared first: routes match in order, and ``{clause_id:path}`` alone
would swallow the suffix.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from serving.http.deps import CallerDep, ServiceDep
from serving.http.schemas import AnswerSummaryOut, Clause, ErrorBody, ListAnswersCitingClauseResponse

router = APIRouter(prefix="/v1/clauses", tags=["clauses"])

_ERRORS = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}}


@router.get(
    "/{clause_id:path}/answers",
    response_model=ListAnswersCitingClauseResponse,
    summary="Answers that cited any version of a clause (role auditor)",
    responses=_ERRORS,
)
def list_answers_citing_clause(
    clause_id: str,
    service: ServiceDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=0, le=1000, description="At most this many; 0 = 50.")] = 0,
) -> ListAnswersCitingClauseResponse:
    summaries = service.list_answers_citing(clause_id, caller, limit)
    return ListAnswersCitingClauseResponse(answers=[AnswerSummaryOut.of(s) for s in summaries])


@router.get(
    "/{clause_id:path}",
    response_model=Clause,
    summary="A clause with its provenance, any version (role reader)",
    responses=_ERRORS,
)
def get_clause(
    clause_id: str,
    service: ServiceDep,
    caller: CallerDep,
    version: Annotated[int, Query(ge=0, description="A specific version; 0 = the active one.")] = 0,
) -> Clause:
    return Clause.of(service.get_clause(clause_id, version, caller))
