"""``/v1/jobs``: incremental retrain jobs (role admin), over the same JobsService as gRPC's JobService.

``POST /v1/jobs/retrain`` starts one (or, with ``dry_run``, only says what it would regenerate),
``GET /v1/jobs`` lists them newest first, ``GET /v1/jobs/{job_id}`` polls one and
``POST /v1/jobs/{job_id}/cancel`` asks it to stop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from kg.jobs import Job
from serving.http.deps import CallerDep
from serving.http.schemas import ErrorBody
from serving.jobs import JobsService

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_ERRORS = {
    401: {"model": ErrorBody},
    403: {"model": ErrorBody},
    404: {"model": ErrorBody},
    409: {"model": ErrorBody},
}


def get_jobs(request: Request) -> JobsService:
    return request.app.state.jobs


JobsDep = Annotated[JobsService, Depends(get_jobs)]


class RetrainRequest(BaseModel):
    """Start an incremental retrain."""

    since_graph_version: int | None = Field(
        None, ge=0, description="The delta starts after this graph version; null = the active model's."
    )
    dry_run: bool = Field(False, description="Only list what would be regenerated; start nothing.")


class JobOut(BaseModel):
    """A job as the API shows it."""

    job_id: str
    kind: str
    state: str
    stage: str | None
    stages_done: list[str]
    progress: float
    since_graph_version: int | None
    cancel_requested: bool
    error: str | None
    actor: str
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    result: dict[str, Any]
    history: list[dict[str, Any]]

    @classmethod
    def of(cls, job: Job) -> JobOut:
        data = job.to_dict()
        return cls(**{k: data[k] for k in cls.model_fields})


class RetrainResponse(BaseModel):
    """The started job, or the dry run's plan."""

    job: JobOut | None = None
    plan: dict[str, Any] | None = None


class JobList(BaseModel):
    jobs: list[JobOut]


@router.post(
    "/retrain",
    response_model=RetrainResponse,
    status_code=202,
    summary="Start a retrain job (role admin)",
    responses=_ERRORS,
)
def start_retrain(body: RetrainRequest, jobs: JobsDep, caller: CallerDep) -> RetrainResponse:
    if body.dry_run:
        return RetrainResponse(plan=jobs.plan_retrain(caller, body.since_graph_version))
    return RetrainResponse(job=JobOut.of(jobs.start_retrain(caller, body.since_graph_version)))


@router.get("", response_model=JobList, summary="Jobs, newest first (role admin)", responses=_ERRORS)
def list_jobs(
    jobs: JobsDep,
    caller: CallerDep,
    state: Annotated[str | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> JobList:
    return JobList(jobs=[JobOut.of(j) for j in jobs.list(caller, state, limit)])


@router.get("/{job_id}", response_model=JobOut, summary="One job (role admin)", responses=_ERRORS)
def get_job(job_id: str, jobs: JobsDep, caller: CallerDep) -> JobOut:
    return JobOut.of(jobs.get(caller, job_id))


@router.post(
    "/{job_id}/cancel", response_model=JobOut, summary="Cancel a job (role admin)", responses=_ERRORS
)
def cancel_job(job_id: str, jobs: JobsDep, caller: CallerDep) -> JobOut:
    return JobOut.of(jobs.cancel(caller, job_id))
