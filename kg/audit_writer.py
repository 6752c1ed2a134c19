"""Answers reach the audit trail in groups, written by a background thread, durable before Ask returns.

Appending each answer in a transaction of its own makes every answer of every replica take the
chain-head lock in turn. :class:`AuditWriter` groups them instead: whatever answers are waiting
are made durable in one step, and an Ask waits only for the step that carries its answer:

- **journal** (the default for serving): the group is appended to a local journal and fsync'd
  once, then the Ask returns; a second thread appends the journaled answers to Neo4j in groups
  (:meth:`kg.audit.AuditStore.append_many`, one chain-head lock per group) and deletes a journal
  segment once all of its answers are in the graph. That thread lingers ``linger_s`` after the
  first answer of a group for more to join it: the answers are durable already, and Neo4j spends
  most of its write time per transaction, not per answer (``bench/bench_ask.py``, 2 cores: a
  linger of 0.2 s cut Neo4j's CPU per answer from 12.6 to 1.5 ms at 1 client, from 3.6 to 1.1 ms
  at 8). An auditor's read in the same process (:meth:`AuditWriter.sync`) does not wait out the
  linger: it flushes. A process killed at any point leaves its journal behind; the next process
  to start with the same journal root (``kgqa serve``, a restarted worker, ``kgqa audit replay``)
  replays it into Neo4j. Answer ids already in the graph
  are skipped, so a replay never duplicates one.
- **graph**: no journal; the group is appended to Neo4j and the Ask returns after the commit.

Each process journals into a directory of its own, locked (``flock``) while it lives, so workers
and replicas that share ``$KGQA_HOME`` never replay a journal whose owner is still running.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import shutil
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import structlog

from kg.audit import AuditCitation, AuditEntry, AuditStore
from kgqa.errors import AuditUnavailable, DeadlineExceeded

log = structlog.get_logger(__name__)

_LOCK = "owner.lock"


def _entry_json(entry: AuditEntry) -> str:
    # vars(), not dataclasses.asdict(): asdict deep-copies, and was a tenth of an answer's time
    data = {**vars(entry), "citations": [vars(c) for c in entry.citations]}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _entry_from_json(line: str) -> AuditEntry:
    data = json.loads(line)
    data["citations"] = [AuditCitation(**c) for c in data.get("citations") or ()]
    return AuditEntry(**data)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class _Segment:
    path: Path
    handle: IO[str] | None
    written: int = 0
    committed: int = 0


class AuditJournal:
    """This process's journal: numbered JSON-lines segments in a directory it holds locked.

    Args:
        root: the journal root shared by the processes of one ``$KGQA_HOME``.
        segment_records: answers per segment; a segment is deleted once all of them are in Neo4j.
    """

    def __init__(self, root: Path, *, segment_records: int = 1024) -> None:
        self.root = Path(root)
        self.dir = self.root / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir(parents=True)
        self._lock_fd = os.open(self.dir / _LOCK, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_dir(self.root)
        self._segment_records = segment_records
        self._segments: deque[_Segment] = deque()
        self._next = 0
        self._lock = threading.Lock()

    def write(self, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` and fsync once: they survive a crash of this process when it returns.

        Raises:
            OSError: the journal could not be written.
        """
        with self._lock:
            segment = self._segments[-1] if self._segments else None
            if segment is None or segment.handle is None or segment.written >= self._segment_records:
                segment = self._open_segment()
            segment.handle.write("".join(_entry_json(e) + "\n" for e in entries))
            segment.handle.flush()
            os.fdatasync(segment.handle.fileno())
            segment.written += len(entries)

    def _open_segment(self) -> _Segment:
        if self._segments and self._segments[-1].handle is not None:
            self._segments[-1].handle.close()
            self._segments[-1].handle = None
        path = self.dir / f"{self._next:08d}.jsonl"
        self._next += 1
        segment = _Segment(path, path.open("a", encoding="utf-8"))
        _fsync_dir(self.dir)  # the new file's name must survive a crash too
        self._segments.append(segment)
        self._drop_finished()
        return segment

    def committed(self, n: int) -> None:
        """The oldest ``n`` journaled answers not yet committed are now in Neo4j."""
        with self._lock:
            for segment in self._segments:
                take = min(n, segment.written - segment.committed)
                segment.committed += take
                n -= take
                if n == 0:
                    break
            self._drop_finished()

    def _drop_finished(self) -> None:
        while self._segments:
            head = self._segments[0]
            if head.handle is not None or head.committed < head.written:
                return
            head.path.unlink(missing_ok=True)
            self._segments.popleft()

    @property
    def uncommitted(self) -> int:
        """Answers journaled but not yet in Neo4j."""
        with self._lock:
            return sum(s.written - s.committed for s in self._segments)

    def close(self) -> None:
        """Close the segment files; the directory goes when every answer reached Neo4j."""
        with self._lock:
            for segment in self._segments:
                if segment.handle is not None:
                    segment.handle.close()
                    segment.handle = None
            self._drop_finished()
            if not self._segments:
                shutil.rmtree(self.dir, ignore_errors=True)
            os.close(self._lock_fd)  # releases the lock: a pending journal becomes an orphan

    # -- journals left by processes that are gone ----------------------------------------------
    @staticmethod
    def adopt_orphans(root: Path) -> list[OrphanJournal]:
        """Journals under ``root`` whose owner is gone, each locked for the caller."""
        root = Path(root)
        if not root.is_dir():
            return []
        out: list[OrphanJournal] = []
        for path in sorted(p for p in root.iterdir() if p.is_dir()):
            fd = os.open(path / _LOCK, os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)  # its owner is alive
                continue
            out.append(OrphanJournal(path, fd))
        return out


@dataclass
class OrphanJournal:
    """A journal left by a process that is gone, locked by the process replaying it."""

    path: Path
    lock_fd: int
    entries: list[AuditEntry] = field(default_factory=list)

    def read(self) -> list[AuditEntry]:
        """Its answers in journal order. A torn last line (the process died mid-write, before the
        fsync returned, so no client got that answer) is skipped."""
        entries: list[AuditEntry] = []
        for segment in sorted(self.path.glob("*.jsonl")):
            for line in segment.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    entries.append(_entry_from_json(line))
                except (ValueError, TypeError) as exc:
                    log.warning("audit.journal_bad_line", segment=segment.name, error=type(exc).__name__)
        self.entries = entries
        return entries

    def remove(self) -> None:
        """Delete it (every answer is in Neo4j) and let go of its lock."""
        shutil.rmtree(self.path, ignore_errors=True)
        os.close(self.lock_fd)

    def release(self) -> None:
        """Let go of it without deleting it (it is replayed later)."""
        os.close(self.lock_fd)


def replay_orphans(store: AuditStore, root: Path, *, batch: int = 256) -> int:
    """Append the answers of every orphaned journal under ``root`` to Neo4j; returns how many
    were appended (answers already in the trail are skipped).

    Raises:
        GraphUnavailable: Neo4j cannot be reached (the journals stay for a later replay).
    """
    appended = 0
    orphans = AuditJournal.adopt_orphans(root)
    try:
        while orphans:
            orphan = orphans[0]
            entries = orphan.read()
            for i in range(0, len(entries), batch):
                appended += len(store.append_many(entries[i : i + batch]))
            log.info("audit.journal_replayed", journal=orphan.path.name, answers=len(entries))
            orphans.pop(0).remove()
    finally:
        for orphan in orphans:
            orphan.release()
    return appended


@dataclass
class _Pending:
    entry: AuditEntry
    ticket: int
    """The answer's place in the order answers were accepted (``sync`` waits by it)."""
    done: bool = False
    error: BaseException | None = None


_STOP = object()
_FLUSH = object()  # sync(): append what is waiting now, without lingering


class AuditWriter:
    """Makes answers durable in groups (see the module doc), with no thread hand-off on the way.

    The group commit is the classic one: an Ask puts its answer in a buffer and takes the write
    lock; whoever holds it writes *everything* buffered in one step (one fsync, or one
    transaction) while the others wait, and each of those finds, once it gets the lock, that its
    answer went with that group. One client pays one write; eight pay about one write each too.

    Args:
        store: the audit store the groups are appended to.
        journal_root: where journals live; None = no journal (durable once in Neo4j).
        max_batch: most answers appended to Neo4j in one transaction.
        version_source: the graph version to stamp an answer with when its evidence did not say
            (journal mode only: in graph mode the append transaction stamps it).
        retry_s: seconds between attempts to reach Neo4j while it cannot be reached (journal mode).
        segment_records: answers per journal segment.
        linger_s: journal mode: how long the graph thread waits after a group's first answer for
            more to join it (0: append whatever is waiting at once).
    """

    def __init__(
        self,
        store: AuditStore,
        journal_root: Path | None = None,
        *,
        max_batch: int = 256,
        version_source: Callable[[], int] | None = None,
        retry_s: float = 1.0,
        segment_records: int = 1024,
        linger_s: float = 0.0,
    ) -> None:
        if linger_s < 0:
            raise ValueError(f"linger_s must be >= 0, got {linger_s}")
        self._store = store
        self._journal_root = Path(journal_root) if journal_root is not None else None
        self._max_batch = max_batch
        self._version_source = version_source
        self._retry_s = retry_s
        self._segment_records = segment_records
        self._linger_s = linger_s
        self._journal: AuditJournal | None = None
        self._buffer: list[_Pending] = []
        self._buffer_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._to_graph: queue.Queue[object] = queue.Queue()  # lists of _Pending, _FLUSH, _STOP
        self._thread: threading.Thread | None = None
        self._started = False
        self._closing = threading.Event()
        self._idle = threading.Condition()
        self._ticket = 0  # the last ticket given
        self._outstanding: set[int] = set()  # tickets of answers accepted and not yet settled
        self._flush_upto = 0  # answers with a ticket up to this are appended without lingering
        self.groups = 0
        """Groups appended to Neo4j so far (tests and metrics read it)."""

    @property
    def pending(self) -> int:
        """Answers accepted but not yet in Neo4j."""
        with self._idle:
            return len(self._outstanding)

    def start(self) -> None:
        """Open this process's journal and start the thread that feeds Neo4j (idempotent)."""
        if self._started:
            return
        self._started = True
        if self._journal_root is not None:
            self._journal = AuditJournal(self._journal_root, segment_records=self._segment_records)
            self._thread = threading.Thread(target=self._graph_loop, name="kgqa-audit-graph", daemon=True)
            self._thread.start()

    # -- the request side ---------------------------------------------------------------------
    def append(self, entry: AuditEntry, *, deadline: float | None = None) -> AuditEntry:
        """Return once ``entry`` is durable (journal fsync'd, or committed in Neo4j).

        Returns:
            The entry as recorded (its ``graph_version`` stamped).

        Raises:
            AuditUnavailable: the writer is closed, or the journal could not be written.
            GraphUnavailable: graph mode, and Neo4j cannot be reached.
            DeadlineExceeded: ``deadline`` (``time.monotonic()``) passed while waiting for the
                group before ours; the answer was not recorded.
        """
        if self._closing.is_set() or not self._started:
            raise AuditUnavailable("the audit trail is not accepting answers (the server is stopping)")
        if self._journal is not None and entry.graph_version is None and self._version_source is not None:
            entry.graph_version = self._version_source()
        with self._idle:
            self._ticket += 1
            pending = _Pending(entry, self._ticket)
            self._outstanding.add(pending.ticket)
        with self._buffer_lock:
            self._buffer.append(pending)
        timeout = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if timeout > threading.TIMEOUT_MAX:  # a call without a deadline may say "in 292 years"
            timeout = -1.0
        if not self._write_lock.acquire(timeout=timeout):
            if self._withdraw(pending):
                raise DeadlineExceeded("the deadline passed while the answer was being recorded; retry")
            self._write_lock.acquire()  # a group took it meanwhile: wait for its outcome
        try:
            if not pending.done:
                self._write_buffered()
        finally:
            self._write_lock.release()
        if pending.error is not None:
            raise pending.error
        return entry

    def _withdraw(self, pending: _Pending) -> bool:
        """Take ``pending`` back out of the buffer (False: a group already took it)."""
        with self._buffer_lock:
            if pending in self._buffer:
                self._buffer.remove(pending)
                self._finished([pending])
                return True
        return False

    def _write_buffered(self) -> None:
        """Under the write lock: make everything buffered durable in one step."""
        with self._buffer_lock:
            batch, self._buffer = self._buffer, []
        if not batch:
            return
        entries = [p.entry for p in batch]
        try:
            if self._journal is not None:
                self._journal.write(entries)
                self._to_graph.put(batch)
            else:
                self._store.append_many(entries)
                self.groups += 1
                self._finished(batch)
        except OSError as exc:
            log.error("audit.journal_write_failed", error=str(exc))
            self._fail(batch, AuditUnavailable("the audit journal cannot be written; retry later"))
        except Exception as exc:  # graph mode: each waiting Ask raises it (GraphUnavailable -> 503)
            self._fail(batch, exc)
        for p in batch:
            p.done = True

    def _fail(self, batch: list[_Pending], error: BaseException) -> None:
        for p in batch:
            p.error = error
        self._finished(batch)

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every answer accepted before this call is in Neo4j (read-your-writes for
        auditors); answers accepted meanwhile are not waited for, so a busy server still answers.
        The graph thread is told to append what is waiting at once, not after its linger.

        Returns:
            False when ``timeout`` passed first.
        """
        end = time.monotonic() + timeout
        with self._idle:
            if not self._outstanding:
                return True
            target = self._ticket
            # sticky, not a one-off signal: answers still being journaled reach the graph thread
            # after any signal would, and must not linger either
            self._flush_upto = max(self._flush_upto, target)
        if self._journal is not None:
            self._to_graph.put(_FLUSH)  # wakes a graph thread that is lingering now
        with self._idle:
            while self._outstanding and min(self._outstanding) <= target:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 10.0) -> int:
        """Stop accepting answers, write what is buffered, and give Neo4j ``timeout`` seconds to
        take the journaled ones. What it could not take stays in the journal for the next start.

        Returns:
            How many answers were left in the journal.
        """
        if self._closing.is_set() or not self._started:
            return 0
        self._closing.set()
        end = time.monotonic() + timeout
        with self._write_lock:
            self._write_buffered()
        if self._journal is None:
            return 0
        self._to_graph.put(_STOP)
        if self._thread is not None:
            self._thread.join(max(0.1, end - time.monotonic()))
        left = self._journal.uncommitted
        self._journal.close()
        if left:
            log.warning("audit.journal_left", answers=left, journal=str(self._journal.dir))
        return left

    def _finished(self, settled: Sequence[_Pending]) -> None:
        """``settled`` are in Neo4j, failed, or withdrawn: nobody waits for them any more."""
        with self._idle:
            self._outstanding.difference_update(p.ticket for p in settled)
            self._idle.notify_all()

    # -- journal mode: from the journal into Neo4j ----------------------------------------------
    def _graph_loop(self) -> None:
        """Orphaned journals first, then this process's answers, in groups of at most
        ``max_batch``, each gathered for up to ``linger_s`` after its first answer."""
        self._replay_orphans()
        waiting: list[_Pending] = []
        stopping = False
        while True:
            if not waiting:
                if stopping:
                    return
                item = self._to_graph.get()
                if item is _STOP:
                    return
                if item is _FLUSH:
                    continue
                waiting.extend(item)  # type: ignore[arg-type]
            until = time.monotonic() + self._linger_s
            while len(waiting) < self._max_batch and not stopping:
                if self._flush_wanted(waiting):
                    until = 0.0
                left = until - time.monotonic()
                try:
                    item = self._to_graph.get(timeout=left) if left > 0 else self._to_graph.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                elif item is _FLUSH:
                    until = 0.0  # take what is queued now, wait no longer
                else:
                    waiting.extend(item)  # type: ignore[arg-type]
            group, waiting = waiting[: self._max_batch], waiting[self._max_batch :]
            if not self._append_until_done([p.entry for p in group]):
                return  # closing while Neo4j is away: the journal keeps them
            assert self._journal is not None
            self._journal.committed(len(group))
            self._finished(group)

    def _flush_wanted(self, waiting: Sequence[_Pending]) -> bool:
        """Does a reader wait (``sync``) for one of ``waiting``? Then it is appended at once."""
        upto = self._flush_upto
        return any(p.ticket <= upto for p in waiting)

    def _append_until_done(self, group: list[AuditEntry]) -> bool:
        """Append ``group``, retrying while Neo4j cannot take it; False when closing first."""
        failing = False
        while True:
            try:
                self._store.append_many(group)
                self.groups += 1
                if failing:
                    log.info("audit.graph_append_resumed")
                return True
            except Exception as exc:
                if not failing:
                    log.warning("audit.graph_append_failed", error=type(exc).__name__, answers=len(group))
                    failing = True
                # While closing, give up at once: a dead Neo4j must not hold the process, and
                # the journal keeps the answers for the next start.
                if self._closing.wait(self._retry_s):
                    return False

    def _replay_orphans(self) -> None:
        assert self._journal_root is not None
        while not self._closing.is_set():
            try:
                replayed = replay_orphans(self._store, self._journal_root, batch=self._max_batch)
            except Exception as exc:
                log.warning("audit.replay_failed", error=type(exc).__name__)
                self._closing.wait(self._retry_s)
                continue
            if replayed:
                log.info("audit.replayed", answers=replayed)
            return


__all__ = ["AuditJournal", "AuditWriter", "OrphanJournal", "replay_orphans"]
