"""``GET /v1/answers/{answer_id}``: the audit record of a past answer (role auditor)."""

from __future__ import annotations

from fastapi import APIRouter

from serving.http.deps import CallerDep, ServiceDep
from serving.http.schemas import AnswerRecordOut, ErrorBody

router = APIRouter(prefix="/v1/answers", tags=["audit"])


@router.get(
    "/{answer_id}",
    response_model=AnswerRecordOut,
    summary="The audit record of an answer (role auditor)",
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 404: {"model": ErrorBody}},
)
def get_answer(answer_id: str, service: ServiceDep, caller: CallerDep) -> AnswerRecordOut:
    return AnswerRecordOut.of(service.get_answer(answer_id, caller))
