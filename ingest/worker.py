"""Parsing in a worker process with a memory cap and an enforced deadline per file.

Inputs within every size limit can still exhaust the machine: a 2.1 MB DOCX expanding to 290 MB
of XML ran past 600 s at 6.2 GB, a 14,400 pt PDF page took 5.7 GB to render. The checks in the
parsers catch the known shapes up front; this module bounds everything else. Each file is parsed
(and cleaned, redacted, structured) in a child process whose address space is capped with
``RLIMIT_AS``; the parent waits for the result until the file's deadline and kills the child
past it. Either way the file fails with its reason, the next file gets a fresh worker, and the
batch goes on. The result travels back pickled (plain dataclasses), with the child's log events,
which the parent re-emits so that they reach the configured log output.

Workers start with ``spawn``: forking a parent that holds a Neo4j driver and its threads is
unsafe, and a fresh interpreter gives the cap a clean address space to count.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal

import structlog

from ingest.config import IngestConfig
from ingest.redact import Redactor
from ingest.types import DocumentTree, ParseStats
from kgqa.errors import IngestError, UnsupportedFormat

log = structlog.get_logger(__name__)

_READY_TIMEOUT_S = 120.0
_M_ARENA_MAX = -8  # glibc mallopt parameter

Outcome = Literal["ok", "ingest", "unsupported", "memory", "crash"]


@dataclass
class _Reply:
    """What the worker sends back for one file."""

    outcome: Outcome
    tree: DocumentTree | None = None
    reason: str = ""
    stats: ParseStats = field(default_factory=ParseStats)
    logs: list[dict[str, Any]] = field(default_factory=list)


# --- the child ---------------------------------------------------------------------------------


def _peak_rss_mb(pid: int | str = "self") -> float | None:
    """VmHWM (peak resident set) of a process in MB, from /proc (Linux); None elsewhere."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> None:
    """Start a new peak-RSS measurement for this process (Linux >= 4.0), so each file gets its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _limit_memory(memory_mb: int) -> None:
    # glibc reserves 64 MB of address space per thread arena; OCR runs one thread per core, which
    # would count gigabytes of reservations that are never used against the cap.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, 2)
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


class _Collector:
    """A structlog processor that keeps events for the parent instead of printing them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, _logger: object, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        self.events.append({"level": method, **event_dict})
        raise structlog.DropEvent

    def take(self) -> list[dict[str, Any]]:
        events, self.events = self.events, []
        return events


def _child(conn: Connection, config: IngestConfig) -> None:
    """Worker main loop: receive a path, send back a :class:`_Reply`, until told to stop."""
    from ingest.pipeline import IngestPipeline

    _limit_memory(config.limits.parse_memory_mb)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    collector = _Collector()
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, collector],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.ERROR)  # library chatter (pdfminer) stays out of the output
    pipeline = IngestPipeline(config)
    conn.send("ready")
    while True:
        path = conn.recv()
        if path is None:
            return
        _reset_peak_rss()
        started = time.perf_counter()
        reply = _Reply("ok")
        try:
            reply.tree = pipeline.process(Path(path))
        except UnsupportedFormat as exc:
            reply = _Reply("unsupported", reason=exc.reason)
        except IngestError as exc:
            reply = _Reply("ingest", reason=exc.reason)
        except MemoryError:
            reply = _Reply("memory")
        except Exception as exc:  # noqa: BLE001 - reported as the file's failure, worker lives on
            reply = _Reply("crash", reason=f"unexpected {type(exc).__name__}: {exc}")
        reply.stats = ParseStats(time.perf_counter() - started, _peak_rss_mb())
        reply.logs = collector.take()
        conn.send(reply)
        if reply.outcome == "memory":
            return  # the heap may be in no state to parse another file


# --- the parent --------------------------------------------------------------------------------


class IsolatedPipeline:
    """:class:`ingest.pipeline.IngestPipeline` run file by file in a capped worker process.

    The worker (and its OCR engine) is reused across files until one of them fails it (deadline,
    memory, death); the next file then starts a new one. Use as a context manager, or call
    :meth:`close`, to stop the worker.

    Args:
        config: the pipeline configuration; ``config.limits.parse_timeout_s`` and
            ``parse_memory_mb`` are the deadline and the cap.
    """

    def __init__(self, config: IngestConfig | None = None) -> None:
        self.config = config or IngestConfig()
        self._redactor = Redactor(self.config.redact)
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self.last_stats: ParseStats | None = None

    def __enter__(self) -> IsolatedPipeline:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def public_path(self, path: Path) -> str:
        """The absolute path with personal data redacted: what the graph stores and logs show."""
        return str(self._redactor.redact_path(os.path.abspath(path)))

    def process(self, path: Path) -> DocumentTree:
        """Parse one file in the worker; raises IngestError with the reason when it fails.

        Raises:
            UnsupportedFormat: the file is not a format kgqa reads.
            IngestError: the file is broken or hostile, ran past the deadline, needed more memory
                than the cap, or killed the worker.
        """
        path = Path(path)
        limits = self.config.limits
        conn = self._worker(path)
        conn.send(str(path))
        started = time.perf_counter()
        if not conn.poll(limits.parse_timeout_s):
            peak = self._child_peak()
            self._stop(kill=True)
            self.last_stats = ParseStats(time.perf_counter() - started, peak)
            raise IngestError(
                path,
                f"parsing took longer than {limits.parse_timeout_s:g} s (KGQA_INGEST__LIMITS__PARSE_TIMEOUT_S) and was "
                f"stopped{_peak_note(peak)}; split the file or raise the limit",
            )
        try:
            reply: _Reply = conn.recv()
        except (EOFError, OSError):
            code = self._stop(kill=False)
            self.last_stats = ParseStats(time.perf_counter() - started, None)
            raise IngestError(
                path,
                f"the parser process died ({_describe_exit(code)}) while reading this file; it most "
                f"likely exceeded the memory limit of {limits.parse_memory_mb} MB (KGQA_INGEST__LIMITS__PARSE_MEMORY_MB)",
            ) from None
        self.last_stats = reply.stats
        _replay(reply.logs)
        if reply.outcome == "ok" and reply.tree is not None:
            return reply.tree
        if reply.outcome == "memory":
            self._stop(kill=False)
            raise IngestError(
                path,
                f"ran out of memory: parsing needed more than the {limits.parse_memory_mb} MB allowed "
                f"(KGQA_INGEST__LIMITS__PARSE_MEMORY_MB){_peak_note(reply.stats.peak_rss_mb)}; the file was stopped",
            )
        if reply.outcome == "unsupported":
            raise UnsupportedFormat(path, reply.reason)
        raise IngestError(path, reply.reason)

    def close(self) -> None:
        """Stop the worker (politely, then by force)."""
        self._stop(kill=False)

    # -- worker lifecycle ----------------------------------------------------------------------
    def _worker(self, path: Path) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._stop(kill=True)
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_child, args=(child, self.config), name="kgqa-parse-worker", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if not parent.poll(_READY_TIMEOUT_S):
            self._stop(kill=True)
            raise IngestError(path, f"the parser process did not start within {_READY_TIMEOUT_S:g} s")
        try:
            parent.recv()
        except (EOFError, OSError):
            code = self._stop(kill=False)
            hint = (
                f"the memory limit of {self.config.limits.parse_memory_mb} MB (KGQA_INGEST__LIMITS__PARSE_MEMORY_MB) may be too low"
                if code is not None and code < 0
                else "see the error it printed"
            )
            raise IngestError(
                path, f"the parser process could not start ({_describe_exit(code)}); {hint}"
            ) from None
        return parent

    def _child_peak(self) -> float | None:
        return _peak_rss_mb(self._process.pid) if self._process is not None else None

    def _stop(self, *, kill: bool) -> int | None:
        """End the worker; returns its exit code (negative: the signal that ended it)."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return None
        if not kill and process.is_alive() and conn is not None:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(None)
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
        if conn is not None:
            conn.close()
        code = process.exitcode
        process.close()
        return code


def _peak_note(peak: float | None) -> str:
    return f" (peak memory {peak:.0f} MB)" if peak is not None else ""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit status {code}"


def _replay(events: list[dict[str, Any]]) -> None:
    """Emit the worker's log events through this process's logging configuration."""
    for event in events:
        event = dict(event)
        level = event.pop("level", "info")
        message = event.pop("event", "")
        emit = getattr(log, level, log.info)
        emit(message, **event)
