"""The gRPC transport: a thin servicer over :class:`serving.service.QAService`.

The stubs in ``serving/grpc/gen/`` are generated at build time from ``protos/kgqa/v1/qa.proto``
by ``python protos/build.py`` (``make`` runs it) and are never edited or committed. They are
re-exported here so the rest of the package imports ``from serving.grpc import qa_pb2``, and a
missing build step fails with an instruction instead of a bare ModuleNotFoundError.
"""

from __future__ import annotations

try:
    from serving.grpc.gen.kgqa.v1 import knowledge_pb2, knowledge_pb2_grpc, qa_pb2, qa_pb2_grpc
except ModuleNotFoundError as exc:  # pragma: no cover - only before the build step
    raise ModuleNotFoundError(
        "the gRPC stubs are not generated yet; run `python protos/build.py` (make does it)"
    ) from exc

SERVICE_NAME: str = qa_pb2.DESCRIPTOR.services_by_name["QAService"].full_name
KNOWLEDGE_SERVICE_NAME: str = knowledge_pb2.DESCRIPTOR.services_by_name["KnowledgeService"].full_name

__all__ = [
    "KNOWLEDGE_SERVICE_NAME",
    "SERVICE_NAME",
    "knowledge_pb2",
    "knowledge_pb2_grpc",
    "qa_pb2",
    "qa_pb2_grpc",
]
