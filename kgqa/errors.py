"""The one error family of kgqa.

Every layer raises a subclass of :class:`KgqaError`. Each class carries what a client is told
about it: ``grpc_code`` (a ``grpc.StatusCode`` name, also the ``code`` of REST error bodies) and
``http_status``. The gRPC interceptor and the FastAPI handlers read these two attributes and
nothing else, so a new error is one class here; a subclass inherits its parent's codes unless it
sets its own. Messages say what the user should do.

This module imports nothing of kgqa or of any transport: every package may raise these errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


class KgqaError(Exception):
    """Base of all kgqa errors: a bug or a condition the client cannot fix (INTERNAL, 500)."""

    grpc_code: ClassVar[str] = "INTERNAL"
    """The ``grpc.StatusCode`` name clients get (also the ``code`` of REST error bodies)."""
    http_status: ClassVar[int] = 500
    """The HTTP status REST clients get."""


class ConfigError(KgqaError):
    """A setting is missing or invalid."""


class ModelFilesError(ConfigError):
    """Model files are missing, fail their pinned checksum, or could not be fetched.

    The message names the file and the command that fixes it (``kgqa models fetch ...``).
    """


class IngestError(KgqaError):
    """A file could not be ingested. Always names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class UnsupportedFormat(IngestError):
    """The file's extension or content is not a format kgqa reads."""


class DocumentConflict(IngestError):
    """The file's document id already belongs to a document ingested from another file."""

    def __init__(self, path: Path | str, doc_id: str, stored_source: str) -> None:
        self.doc_id = doc_id
        self.stored_source = stored_source
        super().__init__(
            path,
            f"document id {doc_id} already belongs to {stored_source}; refusing to replace its clauses. "
            f"If this file is meant to replace it, run `kgqa ingest --replace {doc_id} ...`; "
            "if it is a different document, give it a distinguishing title",
        )


class GraphError(KgqaError):
    """A graph operation failed for a reason other than availability."""


class GraphUnavailable(GraphError):
    """Neo4j cannot be reached; retry later or check KGQA_NEO4J_URI."""

    grpc_code = "UNAVAILABLE"
    http_status = 503


class NotFound(GraphError):
    """The requested node does not exist."""

    grpc_code = "NOT_FOUND"
    http_status = 404


class StaleEdit(GraphError):
    """An edit was made against a version of a clause, triple or entity that has moved on since
    the editor read it; re-read it (``current_version``) and edit again."""

    grpc_code = "ABORTED"
    http_status = 409

    def __init__(self, target_id: str, expected_version: int, current_version: int) -> None:
        self.target_id = target_id
        self.expected_version = expected_version
        self.current_version = current_version
        super().__init__(
            f"stale edit: {target_id} is at version {current_version}, the edit was made against "
            f"version {expected_version}; re-read it and edit again (current_version={current_version})"
        )


class LauncherError(KgqaError):
    """The local Neo4j launcher could not be built, started or stopped."""


class ServingError(KgqaError):
    """A request to the QA service cannot be served as asked."""


class InvalidArgument(ServingError):
    """The request is malformed: empty, too long or non-text question, bad k, bad id."""

    grpc_code = "INVALID_ARGUMENT"
    http_status = 422


class UnsupportedValue(InvalidArgument):
    """An edited triple states a value (amount, rate, duration, party) that its clause's text does
    not; confirm it with ``force`` and a reason to store it as an editor's assertion."""

    def __init__(self, triple: str, values: list[str]) -> None:
        self.values = values
        super().__init__(
            f"{triple}: not in the text of the clause it is stated in: {', '.join(values)}; correct the "
            "value, or confirm it with force and a reason (it is then marked asserted)"
        )


class RequestTooLarge(ServingError):
    """The request body is larger than KGQA_MAX_REQUEST_BYTES; refused before it is read."""

    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 413


class Unauthenticated(ServingError):
    """No API key, or an unknown one."""

    grpc_code = "UNAUTHENTICATED"
    http_status = 401


class PermissionDenied(ServingError):
    """The caller's role may not do this."""

    grpc_code = "PERMISSION_DENIED"
    http_status = 403


class DeadlineExceeded(ServingError):
    """The caller's deadline passed before the answer was ready."""

    grpc_code = "DEADLINE_EXCEEDED"
    http_status = 504


class NotReady(ServingError):
    """The service is still starting (index not loaded) or a dependency is down."""

    grpc_code = "UNAVAILABLE"
    http_status = 503


class AuditUnavailable(NotReady):
    """An answer cannot be recorded in the audit trail (the server is stopping, or its journal
    cannot be written); it is not returned. Retry later."""


class Overloaded(ServingError):
    """The server is answering as many requests as it admits at once; retry shortly (another
    replica may have room)."""

    grpc_code = "RESOURCE_EXHAUSTED"
    http_status = 429


class JobError(KgqaError):
    """A background job (incremental retraining) cannot do what was asked."""


class JobStateError(JobError):
    """The job is not in a state that allows this (resuming a finished job, approving a running one)."""

    grpc_code = "FAILED_PRECONDITION"
    http_status = 409


class JobCancelled(JobError):
    """The job's cancel flag was raised; its worker stopped at the next check."""
