"""Every error carries its transport codes, and both transports read them from the class."""

from __future__ import annotations

import grpc
import pytest

import kgqa.errors as errors
from serving.grpc.interceptors import status_for
from serving.http.errors import http_error

# The HTTP statuses that may go with each gRPC code (Google's API design table, plus 422 for a
# request body FastAPI-style validation rejects).
COMPATIBLE = {
    "INVALID_ARGUMENT": {400, 422},
    "FAILED_PRECONDITION": {400, 409, 412},  # 409: the resource's state forbids it (a job that ended)
    "OUT_OF_RANGE": {400},
    "UNAUTHENTICATED": {401},
    "PERMISSION_DENIED": {403},
    "NOT_FOUND": {404},
    "ABORTED": {409},
    "ALREADY_EXISTS": {409},
    "RESOURCE_EXHAUSTED": {413, 429},
    "CANCELLED": {499},
    "INTERNAL": {500},
    "UNKNOWN": {500},
    "DATA_LOSS": {500},
    "UNIMPLEMENTED": {501},
    "UNAVAILABLE": {503},
    "DEADLINE_EXCEEDED": {504},
}


def _family() -> list[type[errors.KgqaError]]:
    seen, todo = [], [errors.KgqaError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def _make(cls: type[errors.KgqaError]) -> errors.KgqaError:
    if issubclass(cls, errors.DocumentConflict):
        return cls("a.md", "DOC", "b.md")
    if issubclass(cls, errors.IngestError):
        return cls("a.md", "unreadable")
    if issubclass(cls, errors.StaleEdit):
        return cls("CAS-1-存货/第五条", 1, 2)
    if issubclass(cls, errors.UnsupportedValue):
        return cls("付款期限 30日", ["45日"])
    return cls("what to do about it")


@pytest.mark.parametrize("cls", _family(), ids=lambda c: c.__name__)
def test_every_error_class_has_a_grpc_code_and_an_http_status_that_agree(cls):
    assert cls.grpc_code in grpc.StatusCode.__members__
    assert cls.http_status in COMPATIBLE[cls.grpc_code]
    exc = _make(cls)
    assert status_for(exc).code is grpc.StatusCode[cls.grpc_code]
    http = http_error(exc)
    assert (http.status, http.code, http.message) == (cls.http_status, cls.grpc_code, str(exc))


def test_the_family_covers_what_clients_rely_on():
    codes = {cls.__name__: (cls.grpc_code, cls.http_status) for cls in _family()}
    assert codes["NotFound"] == ("NOT_FOUND", 404)
    assert codes["GraphUnavailable"] == ("UNAVAILABLE", 503)
    assert codes["PermissionDenied"] == ("PERMISSION_DENIED", 403)
    assert codes["ConfigError"] == ("INTERNAL", 500)  # inherited: an operator's problem


def test_a_new_error_is_one_class():
    class StaleEdit(errors.KgqaError):
        grpc_code = "ABORTED"
        http_status = 409

    class StaleTriple(StaleEdit):  # inherits its parent's codes
        pass

    for exc in (StaleEdit("the clause moved on to version 3"), StaleTriple("the triple moved on")):
        assert status_for(exc).code is grpc.StatusCode.ABORTED
        assert (http_error(exc).status, http_error(exc).code) == (409, "ABORTED")
