"""The one error family of kgqa.

Every layer raises a subclass of :class:`KgqaError`; the CLI, and later the gRPC interceptor and
the FastAPI handlers, map these to exit codes / transport codes in one place each. Messages say
what the user should do.
"""

from __future__ import annotations

from pathlib import Path


class KgqaError(Exception):
    """Base of all kgqa errors."""


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


class NotFound(GraphError):
    """The requested node does not exist."""


class LauncherError(KgqaError):
    """The local Neo4j launcher could not be built, started or stopped."""


class ServingError(KgqaError):
    """A request to the QA service cannot be served as asked."""


class InvalidArgument(ServingError):
    """The request is malformed: empty, too long or non-text question, bad k, bad id."""


class RequestTooLarge(ServingError):
    """The request body is larger than KGQA_MAX_REQUEST_BYTES; refused before it is read."""


class Unauthenticated(ServingError):
    """No API key, or an unknown one."""


class PermissionDenied(ServingError):
    """The caller's role may not do this."""


class DeadlineExceeded(ServingError):
    """The caller's deadline passed before the answer was ready."""


class NotReady(ServingError):
    """The service is still starting (index not loaded) or a dependency is down."""


class AuditUnavailable(NotReady):
    """An answer cannot be recorded in the audit trail (the server is stopping, or its journal
    cannot be written); it is not returned. Retry later."""


class Overloaded(ServingError):
    """The server is answering as many requests as it admits at once; retry shortly (another
    replica may have room)."""
