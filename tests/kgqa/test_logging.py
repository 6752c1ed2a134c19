"""kgqa/logging.py: no local variables, no secrets, no personal data, bounded records, in both modes."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from kgqa.logging import MAX_STRING, configure_logging, is_secret_key

KEY = "adm-7f3c9e-secret-api-key"
PHONE = "13812345678"
RESIDENT_ID = "110101199003077635"  # a valid check digit: the redactor recognizes it
QUESTION = f"我的手机{PHONE}，身份证{RESIDENT_ID}，请问存货如何计量？"


def _fail(credentials: str, question: str) -> None:
    """Raises with a key and a question in its locals, as a request handler would hold them."""
    padded = question * 2
    raise ValueError(f"could not answer: {len(padded)} characters")


def _log_failure(logger) -> None:
    try:
        _fail(KEY, QUESTION)
    except ValueError as exc:
        logger.error("http.internal_error", incident="abc123", exc_info=exc)


@pytest.fixture(autouse=True)
def _restore_logging():
    yield
    configure_logging("INFO")


@pytest.mark.parametrize("json_logs", [False, True])
def test_a_traceback_has_no_locals_and_no_secret(capsys, json_logs):
    configure_logging("INFO", json_logs)
    _log_failure(structlog.get_logger("test"))
    err = capsys.readouterr().err
    assert "could not answer" in err and "_fail" in err  # type, message and stack are kept
    for leak in (KEY, PHONE, RESIDENT_ID):
        assert leak not in err, leak
    if json_logs:
        (line,) = err.strip().splitlines()  # one record, one line
        record = json.loads(line)
        assert record["incident"] == "abc123" and record["level"] == "error"
        (exc,) = record["exception"]
        assert exc["exc_type"] == "ValueError" and "could not answer" in exc["exc_value"]
        assert [f["name"] for f in exc["frames"]][-1] == "_fail"
        assert all("locals" not in f for f in exc["frames"])


def test_secrets_are_dropped_by_field_name(capsys):
    configure_logging("INFO", json_logs=True)
    structlog.get_logger("test").info(
        "call",
        api_key=KEY,
        authorization=f"Bearer {KEY}",
        neo4j_password=KEY,
        headers={"Cookie": KEY, "accept": "json"},
        prompt_tokens=12,
    )
    record = json.loads(capsys.readouterr().err)
    assert KEY not in json.dumps(record)
    assert record["prompt_tokens"] == 12 and record["headers"] == {"accept": "json"}
    assert is_secret_key("access_token") and is_secret_key("API_KEY") and not is_secret_key("tokens")


def test_questions_and_free_text_are_redacted_and_bearer_keys_masked(capsys):
    configure_logging("INFO", json_logs=True)
    structlog.get_logger("test").info("asked", question=QUESTION, note=f"header was Bearer {KEY}")
    logging.getLogger("uvicorn.error").warning("client sent %s", QUESTION)  # stdlib records too
    lines = capsys.readouterr().err.strip().splitlines()
    ours, theirs = (json.loads(line) for line in lines)
    assert ours["question"] == "我的手机[手机号]，身份证[身份证号]，请问存货如何计量？"
    assert ours["note"] == "header was Bearer [secret]"
    assert theirs["logger"] == "uvicorn.error" and "[手机号]" in theirs["event"]
    assert PHONE not in theirs["event"] and RESIDENT_ID not in theirs["event"]


def test_a_huge_exception_costs_one_bounded_record(capsys):
    """A Lucene error used to quote the whole query: ~400 KB per failure."""
    configure_logging("INFO", json_logs=True)
    try:
        raise RuntimeError("Cannot parse query: " + "存货 OR " * 60_000)
    except RuntimeError as exc:
        logging.getLogger("neo4j").error("query failed", exc_info=exc)
        structlog.get_logger("test").error("grpc.internal_error", incident="x", exc_info=exc)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert len(line.encode()) < 4 * MAX_STRING * 3, len(line)
        assert "characters cut" in line


def test_uvicorn_loggers_configured_by_uvicorn_still_go_through_ours(capsys):
    """Anything that ran uvicorn with its default log_config gave its loggers their own handlers."""
    import logging.config

    import uvicorn.config

    logging.config.dictConfig(uvicorn.config.LOGGING_CONFIG)
    configure_logging("INFO", json_logs=True)
    logging.getLogger("uvicorn.error").warning("client sent %s", QUESTION)
    record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert record["logger"] == "uvicorn.error" and "[手机号]" in record["event"]
