"""The gRPC edge: authentication, the one KgqaError -> status code mapping, and request metrics.

Every QAService method passes through :class:`ServiceInterceptor`, which

1. reads ``authorization: Bearer <key>`` metadata and resolves it to a :class:`Caller` through
   the :class:`KeyRing` (health checking and reflection are other services and need no key);
2. runs the servicer method with that caller available from :func:`current_caller`;
3. turns a raised :class:`KgqaError` into the status code its class carries (``grpc_code``) and
   its message — the only place in the gRPC transport where that happens (STYLE habit 6; the
   REST twin is ``serving/http/errors.py``); anything else becomes INTERNAL without internals, with an
   incident id in the status details and the ``kgqa-incident`` trailing metadata, and one log
   record under that id;
4. counts the call by method and code in the shared :class:`Metrics`.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import grpc
import structlog

from kgqa.errors import KgqaError, Unauthenticated
from serving.auth import KeyRing, bearer_token
from serving.metrics import Metrics
from serving.types import Caller

log = structlog.get_logger(__name__)

TRANSPORT = "grpc"

_caller: ContextVar[Caller | None] = ContextVar("kgqa_grpc_caller", default=None)


def current_caller() -> Caller:
    """The authenticated caller of the RPC running on this thread.

    Raises:
        Unauthenticated: called outside an RPC that went through :class:`ServiceInterceptor`.
    """
    caller = _caller.get()
    if caller is None:
        raise Unauthenticated("no authenticated caller; is the ServiceInterceptor installed?")
    return caller


INCIDENT_METADATA = "kgqa-incident"
WORKER_METADATA = "kgqa-worker"
"""Initial metadata naming the worker process that served the call (``kgqa serve --workers N``)."""


@dataclass(frozen=True)
class GrpcError:
    """What a client gets for an error: status code, details, incident id (internal errors)."""

    code: grpc.StatusCode
    message: str
    incident: str | None = None

    def abort(self, context: grpc.ServicerContext) -> None:
        if self.incident is not None:
            context.set_trailing_metadata(((INCIDENT_METADATA, self.incident),))
        context.abort(self.code, self.message)


def status_for(exc: BaseException) -> GrpcError:
    """The status a client sees for ``exc``.

    Non-kgqa exceptions are bugs: the client gets INTERNAL with an incident id that is also
    logged (once, with the stack and no local variables), never the exception text, which may
    hold internals.
    """
    if isinstance(exc, KgqaError):
        return GrpcError(grpc.StatusCode[exc.grpc_code], str(exc))
    incident = uuid.uuid4().hex[:12]
    log.error("grpc.internal_error", incident=incident, exc_info=exc)
    return GrpcError(
        grpc.StatusCode.INTERNAL, f"internal error (incident {incident}); quote it to support", incident
    )


def _metadata_key(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return bearer_token(value if isinstance(value, str) else value.decode("latin-1"))
    return None


class ServiceInterceptor(grpc.ServerInterceptor):
    """Authenticates, maps errors and records metrics for the methods of our services.

    Args:
        keyring: the configured API keys.
        metrics: shared transport metrics.
        service_prefixes: method-path prefixes that need a key (others pass through untouched).
    """

    def __init__(
        self,
        keyring: KeyRing,
        metrics: Metrics,
        service_prefixes: tuple[str, ...] = ("/kgqa.",),
        worker: str | None = None,
    ) -> None:
        self._keyring = keyring
        self._metrics = metrics
        self._prefixes = service_prefixes
        self._worker_metadata = ((WORKER_METADATA, worker),) if worker is not None else None

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(self._prefixes):
            return handler
        name = method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, name),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, name),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # no client-streaming methods in the API

    def _authenticate(self, context: grpc.ServicerContext) -> None:
        if self._worker_metadata is not None:
            # a client already gone (cancelled, past its deadline) makes this raise: nobody to tell
            with contextlib.suppress(grpc.RpcError):
                context.send_initial_metadata(self._worker_metadata)
        _caller.set(self._keyring.authenticate(_metadata_key(context)))

    def _wrap_unary(self, behavior: Callable[[Any, grpc.ServicerContext], Any], name: str):
        def wrapper(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            self._metrics.in_flight.labels(TRANSPORT).inc()
            code = grpc.StatusCode.OK
            try:
                self._authenticate(context)
                return behavior(request, context)
            except Exception as exc:
                error = status_for(exc)
                code = error.code
                error.abort(context)
            finally:
                _caller.set(None)
                self._metrics.in_flight.labels(TRANSPORT).dec()
                self._metrics.observe_request(
                    TRANSPORT, name, "unary", code.name, time.perf_counter() - start
                )

        return wrapper

    def _wrap_stream(self, behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]], name: str):
        def wrapper(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            start = time.perf_counter()
            self._metrics.in_flight.labels(TRANSPORT).inc()
            code = grpc.StatusCode.OK
            try:
                self._authenticate(context)
                yield from behavior(request, context)
            except GeneratorExit:  # the client went away mid-stream
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:
                error = status_for(exc)
                code = error.code
                error.abort(context)
            finally:
                _caller.set(None)
                self._metrics.in_flight.labels(TRANSPORT).dec()
                self._metrics.observe_request(
                    TRANSPORT, name, "stream", code.name, time.perf_counter() - start
                )

        return wrapper


__all__ = [
    "INCIDENT_METADATA",
    "WORKER_METADATA",
    "GrpcError",
    "ServiceInterceptor",
    "current_caller",
    "status_for",
]
