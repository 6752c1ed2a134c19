"""Structured logging (structlog) to stderr, so stdout stays clean for `--json` output."""

from __future__ import annotations

import logging
import sys

import structlog


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


def configure_logging(level: str = "INFO", json_logs: bool = False) -> None:
    """Route structlog and stdlib logging to stderr as key=value lines or JSON."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(message)s", force=True)
    for noisy in ("pdfminer", "jieba", "RapidOCR", "httpx", "faiss", "faiss.loader", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    logging.getLogger("neo4j").setLevel(max(numeric, logging.ERROR))
    renderer = (
        structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger_factory,
        cache_logger_on_first_use=False,
    )
