"""Structured logging (structlog) to stderr, so stdout stays clean for `--json` output.

Every record — ours, and the standard-library ones of uvicorn, grpc and the neo4j driver — goes
through the same processors before it is written:

1. :func:`drop_secrets` removes fields named like secrets (``password``, ``api_key``,
   ``authorization``, ``credentials``, ``token``, ...), at any depth;
2. an exception becomes its type, message and stack **without local variables** (a local can
   hold a caller's API key or a question with an ID number in it): plain text in console mode,
   ``{"exc_type", "exc_value", "frames": [...]}`` in JSON mode, at most ``MAX_FRAMES`` frames;
3. :class:`Sanitizer` redacts personal data from every string (ingest's :class:`Redactor`: phone,
   ID and card numbers, e-mail), masks ``Bearer <key>`` and cuts long strings, so one failure
   costs one bounded record, whatever the question or the driver's message held.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from ingest.redact import Redactor

MAX_STRING = 2000
"""Longest string value written (longer ones keep their head and tail)."""
MAX_EXCEPTION = 12000
"""Longest formatted traceback (console mode)."""
MAX_FRAMES = 30
"""Stack frames kept per exception (JSON mode); the rest are elided from the middle."""

_SECRET_KEY = re.compile(
    r"(?:^|_)(?:password|passwd|pwd|secret|token|api_?key|key|authorization|credentials?|bearer|cookie)$",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s,;'\"]+")
_NOT_SANITIZED = frozenset({"timestamp", "level", "logger", "incident"})


class _StderrLogger:
    """Writes each rendered event to whatever ``sys.stderr`` is at call time.

    Binding the stream at configuration time breaks when stderr is later swapped (test capture,
    daemonization); looking it up per call costs nothing measurable.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


def _stderr_logger_factory(*_args: object) -> _StderrLogger:
    return _StderrLogger()


class _StderrHandler(logging.StreamHandler):
    """A stdlib handler that writes to the ``sys.stderr`` of the moment (see _StderrLogger)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def is_secret_key(name: str) -> bool:
    """Whether a field called ``name`` may hold a secret (its value is never logged)."""
    return bool(_SECRET_KEY.search(name))


def _without_secrets(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: _without_secrets(v) for k, v in value.items() if not (isinstance(k, str) and is_secret_key(k))
        }
    if isinstance(value, (list, tuple)):
        return [_without_secrets(v) for v in value]
    return value


def drop_secrets(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Remove every field named like a secret, at any depth (structlog processor)."""
    return {
        k: _without_secrets(v) for k, v in event_dict.items() if not (isinstance(k, str) and is_secret_key(k))
    }


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]} …[{len(text) - 2 * half} characters cut]… {text[-half:]}"


class Sanitizer:
    """Redacts personal data and bearer keys from every string of a record and bounds its size.

    Args:
        redactor: the redactor of ingestion (same patterns, ``KGQA_INGEST__REDACT__EXTRA_PATTERNS`` included).
        max_string: longest string value kept.
    """

    def __init__(self, redactor: Redactor, max_string: int = MAX_STRING) -> None:
        self._redactor = redactor
        self._max = max_string

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        out: MutableMapping[str, Any] = {}
        for key, value in event_dict.items():
            if key in _NOT_SANITIZED:
                out[key] = value
            elif key == "exception" and isinstance(value, str):
                out[key] = self._text(value, MAX_EXCEPTION)
            else:
                out[key] = self._value(value)
        return dict(out)

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._text(value, self._max)
        if isinstance(value, Mapping):
            return {k: self._value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._value(v) for v in value]
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        return self._text(repr(value), self._max)  # unknown objects: their (redacted) repr only

    def _text(self, text: str, limit: int) -> str:
        text = _cut(text, max(limit, 4 * self._max))  # bound the redactor's work first
        redacted, _ = self._redactor.redact(text)
        return _cut(_BEARER.sub(r"\1 [secret]", redacted), limit)


def _exception_processor(json_logs: bool) -> Processor:
    if json_logs:
        return structlog.processors.ExceptionRenderer(
            ExceptionDictTransformer(show_locals=False, max_frames=MAX_FRAMES, use_rich=False)
        )
    return structlog.processors.format_exc_info  # plain traceback text, no locals


def configure_logging(level: str = "INFO", json_logs: bool = False, redactor: Redactor | None = None) -> None:
    """Route structlog and stdlib logging to stderr as key=value lines or JSON, sanitized.

    Args:
        level: the least severe level written.
        json_logs: one JSON object per line instead of key=value text.
        redactor: the personal-data redactor; the default patterns when None.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    tail: list[Processor] = [
        drop_secrets,
        _exception_processor(json_logs),
        Sanitizer(redactor or Redactor()),
        renderer,
    ]
    stamp = structlog.processors.TimeStamper(fmt="iso")

    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, stamp],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # uvicorn's own dictConfig (when anything ran it with its default log_config) gives its
    # loggers plain-text handlers that bypass ours and our redaction: route them to the root.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        server_logger = logging.getLogger(name)
        for old in list(server_logger.handlers):
            server_logger.removeHandler(old)
        server_logger.propagate = True
    for noisy in ("pdfminer", "jieba", "RapidOCR", "httpx", "faiss", "faiss.loader", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    logging.getLogger("neo4j").setLevel(max(numeric, logging.ERROR))

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger_factory,
        cache_logger_on_first_use=False,
    )


__all__ = ["MAX_FRAMES", "MAX_STRING", "Sanitizer", "configure_logging", "drop_secrets", "is_secret_key"]
