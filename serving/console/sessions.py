"""Console sessions: an API key signs in once, the browser then holds only a signed session id.

The key itself is never stored, in the cookie or on the server: signing in authenticates it with
the :class:`~serving.auth.KeyRing` and keeps the resulting :class:`~serving.types.Caller` (key id
and role) in a server-side session. The cookie carries a random session id signed with
itsdangerous, so a forged or altered cookie is rejected before any lookup. Expiry is decided on
the server (absolute lifetime and idle timeout): an old cookie replayed after expiry or sign-out
finds nothing. Each session has its own CSRF token (synchronizer-token pattern), which every
state-changing form carries.

Sessions live in SQLite: in the process's memory by default, or in a file under
``ConsoleConfig.state_dir`` (``kgqa serve`` puts it under ``$KGQA_HOME/console``), which every
worker of ``kgqa serve --workers N`` opens, with the signing secret beside it. The kernel hands
each new connection to any worker, so a session opened on one must be known to all — the
question a browser posts for streaming too, since its stream comes on another connection.

Sign-in itself is protected by a short-lived signed token in a separate cookie (double submit),
so another site cannot sign a browser in under the attacker's key.
"""

from __future__ import annotations

import hmac
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

from serving.console.config import ConsoleConfig
from serving.types import Caller, Role

SESSION_COOKIE = "kgqa_console"
LOGIN_COOKIE = "kgqa_console_login"
LOGIN_TOKEN_TTL_S = 3600


@dataclass
class ConsoleSession:
    """A signed-in browser: who it is and its CSRF token."""

    sid: str
    caller: Caller
    csrf: str
    created: float
    last_seen: float

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf.encode())


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    sid TEXT PRIMARY KEY, key_id TEXT NOT NULL, role INTEGER NOT NULL, csrf TEXT NOT NULL,
    created REAL NOT NULL, last_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tickets (
    ticket TEXT PRIMARY KEY, sid TEXT NOT NULL, question TEXT NOT NULL, created REAL NOT NULL
);
"""


def shared_secret(folder: Path) -> str:
    """The signing secret every worker reads from ``folder/secret`` (made once, mode 0600).

    Written to a private temporary file first and linked into place, so a worker starting at the
    same moment reads either nothing (and makes its own attempt) or the whole secret.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / "secret"
    if not path.exists():
        tmp = folder / f".secret-{os.getpid()}-{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another worker was first: use its secret
        finally:
            tmp.unlink()
    return path.read_text(encoding="ascii").strip()


class SessionStore:
    """Live sessions, keyed by session id, in SQLite (see the module docstring).

    Args:
        config: lifetimes and limits; ``state_dir`` set = a file shared by the server's processes.
        clock: wall-clock seconds (tests pass their own); sessions outlive a process, so not a
            per-process monotonic clock.
        redact: applied to every question before it is kept for its stream: the store is a file
            under ``kgqa serve``, and personal data is never written to disk (the console passes
            ``QAService.storable_question``).
    """

    def __init__(
        self,
        config: ConsoleConfig,
        clock: Callable[[], float] = time.time,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.config = config
        self._redact = redact or (lambda text: text)
        folder = Path(config.state_dir) if config.state_dir else None
        secret = config.secret_key or (shared_secret(folder) if folder else secrets.token_urlsafe(32))
        self._signer = Signer(secret, salt="kgqa-console-session")
        self._login_signer = TimestampSigner(secret, salt="kgqa-console-login")
        self._clock = clock
        self._lock = threading.Lock()
        target = ":memory:"
        if folder:  # session ids, CSRF tokens and waiting questions: readable by the server alone
            target = str(folder / "sessions.sqlite3")
            os.close(os.open(target, os.O_RDWR | os.O_CREAT, 0o600))  # SQLite's -wal/-shm follow it
        self._db = sqlite3.connect(target, timeout=10.0, check_same_thread=False, isolation_level=None)
        if folder:
            self._db.execute("PRAGMA journal_mode=WAL")
            # every request restarts its session's idle clock: a write per request. In WAL mode
            # NORMAL syncs at checkpoints, not at each commit; a power cut may lose the last few
            # sign-ins or idle-clock updates (those users sign in again), never corrupt the store
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    # -- sessions ---------------------------------------------------------------------------------
    def create(self, caller: Caller) -> tuple[ConsoleSession, str]:
        """A new session for ``caller`` and the cookie value that names it."""
        now = self._clock()
        session = ConsoleSession(secrets.token_urlsafe(32), caller, secrets.token_urlsafe(32), now, now)
        with self._write() as db:
            self._prune(db, now)
            db.execute(
                "DELETE FROM sessions WHERE sid IN (SELECT sid FROM sessions ORDER BY created DESC, rowid DESC"
                " LIMIT -1 OFFSET ?)",
                (max(self.config.max_sessions - 1, 0),),
            )  # the oldest go past max_sessions
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)",
                (session.sid, caller.key_id, int(caller.role), session.csrf, now, now),
            )
        return session, self._signer.sign(session.sid).decode()

    def get(self, cookie: str | None) -> ConsoleSession | None:
        """The live session a cookie names (its idle clock restarted), or None."""
        sid = self._unsign(cookie)
        if sid is None:
            return None
        now = self._clock()
        with self._write() as db:
            row = db.execute(
                "SELECT key_id, role, csrf, created, last_seen FROM sessions WHERE sid = ?", (sid,)
            ).fetchone()
            if row is None:
                return None
            session = ConsoleSession(sid, Caller(row[0], Role(row[1])), row[2], row[3], row[4])
            if self._expired(session, now):
                self._drop(db, sid)
                return None
            db.execute("UPDATE sessions SET last_seen = ? WHERE sid = ?", (now, sid))
        session.last_seen = now
        return session

    def delete(self, cookie: str | None) -> None:
        sid = self._unsign(cookie)
        if sid is not None:
            with self._write() as db:
                self._drop(db, sid)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM sessions").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One immediate transaction under the thread lock (SQLite's own lock orders processes)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _unsign(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie).decode()
        except BadSignature:
            return None

    def _expired(self, session: ConsoleSession, now: float) -> bool:
        return (
            now - session.created > self.config.session_ttl_s
            or now - session.last_seen > self.config.idle_timeout_s
        )

    @staticmethod
    def _drop(db: sqlite3.Connection, sid: str) -> None:
        db.execute("DELETE FROM tickets WHERE sid = ?", (sid,))
        db.execute("DELETE FROM sessions WHERE sid = ?", (sid,))

    def _prune(self, db: sqlite3.Connection, now: float) -> None:
        db.execute(
            "DELETE FROM sessions WHERE created < ? OR last_seen < ?",
            (now - self.config.session_ttl_s, now - self.config.idle_timeout_s),
        )
        db.execute("DELETE FROM tickets WHERE created < ?", (now - self.config.ask_ticket_ttl_s,))

    # -- questions posted for streaming -----------------------------------------------------------
    def add_ticket(self, session: ConsoleSession, question: str) -> str:
        """Keep ``question`` for the stream request that follows; returns its single-use ticket.

        The question waits at most ``ask_ticket_ttl_s``: expired tickets go on every add.
        """
        now = self._clock()
        ticket = secrets.token_urlsafe(16)
        with self._write() as db:
            db.execute("DELETE FROM tickets WHERE created < ?", (now - self.config.ask_ticket_ttl_s,))
            db.execute(
                "INSERT INTO tickets VALUES (?, ?, ?, ?)", (ticket, session.sid, self._redact(question), now)
            )
        return ticket

    def take_ticket(self, session: ConsoleSession, ticket: str) -> str | None:
        """The question a ticket of this session holds, once; None when unknown, used or expired."""
        with self._write() as db:
            row = db.execute(
                "DELETE FROM tickets WHERE ticket = ? AND sid = ? RETURNING question, created",
                (ticket, session.sid),
            ).fetchone()
        if row is None or self._clock() - row[1] > self.config.ask_ticket_ttl_s:
            return None
        return row[0]

    # -- the sign-in form's token -----------------------------------------------------------------
    def login_token(self) -> tuple[str, str]:
        """A fresh sign-in token and its signed cookie value."""
        token = secrets.token_urlsafe(24)
        return token, self._login_signer.sign(token).decode()

    def check_login_token(self, cookie: str | None, token: str | None) -> bool:
        """True when the form's token is the one the (unexpired, untampered) cookie was signed for."""
        if not cookie or not token:
            return False
        try:
            signed = self._login_signer.unsign(cookie, max_age=LOGIN_TOKEN_TTL_S).decode()
        except (BadSignature, SignatureExpired):
            return False
        return hmac.compare_digest(signed.encode(), token.encode())


__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "ConsoleSession", "SessionStore", "shared_secret"]
