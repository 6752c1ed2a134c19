"""The JobService servicer: proto request -> one :class:`serving.jobs.JobsService` call -> proto.

Authentication and error mapping are the interceptor's (every ``/kgqa.`` method passes through
it); authorization (role admin) is the service's.
"""

from __future__ import annotations

import json

import grpc

from kg.jobs import Job
from serving.grpc.gen.kgqa.v1 import jobs_pb2, jobs_pb2_grpc
from serving.grpc.interceptors import current_caller
from serving.jobs import JobsService

JOB_SERVICE_NAME: str = jobs_pb2.DESCRIPTOR.services_by_name["JobService"].full_name


def job_to_proto(job: Job) -> jobs_pb2.Job:
    return jobs_pb2.Job(
        job_id=job.job_id,
        kind=job.kind,
        state=job.state.value,
        stage=job.stage or "",
        stages_done=job.stages_done,
        progress=job.progress,
        since_graph_version=job.since_graph_version or 0,
        cancel_requested=job.cancel_requested,
        error=job.error or "",
        created_at=job.created_at,
        updated_at=job.updated_at,
        started_at=job.started_at or "",
        finished_at=job.finished_at or "",
        actor=job.actor,
        result_json=json.dumps(job.result, ensure_ascii=False, sort_keys=True),
    )


class JobServicer(jobs_pb2_grpc.JobServiceServicer):
    """gRPC face of :class:`JobsService`."""

    def __init__(self, service: JobsService) -> None:
        self._service = service

    def StartRetrain(
        self, request: jobs_pb2.StartRetrainRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.Job:  # noqa: N802
        since = request.since_graph_version or None
        return job_to_proto(self._service.start_retrain(current_caller(), since))

    def GetJob(self, request: jobs_pb2.GetJobRequest, context: grpc.ServicerContext) -> jobs_pb2.Job:  # noqa: N802
        return job_to_proto(self._service.get(current_caller(), request.job_id))

    def ListJobs(  # noqa: N802
        self, request: jobs_pb2.ListJobsRequest, context: grpc.ServicerContext
    ) -> jobs_pb2.ListJobsResponse:
        jobs = self._service.list(current_caller(), request.state or None, request.limit or 50)
        return jobs_pb2.ListJobsResponse(jobs=[job_to_proto(j) for j in jobs])

    def CancelJob(self, request: jobs_pb2.CancelJobRequest, context: grpc.ServicerContext) -> jobs_pb2.Job:  # noqa: N802
        return job_to_proto(self._service.cancel(current_caller(), request.job_id))


def add_job_service(server: grpc.Server, service: JobsService) -> str:
    """Register the JobService on ``server``; returns its full name (for reflection)."""
    jobs_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(service), server)
    return JOB_SERVICE_NAME


__all__ = ["JOB_SERVICE_NAME", "JobServicer", "add_job_service", "job_to_proto"]
