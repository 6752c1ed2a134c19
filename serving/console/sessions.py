"""Console sessions: an API key signs in once, the browser then holds only a signed session id.

The key itself is never stored, in the cookie or on the server: signing in authenticates it with
the :class:`~serving.auth.KeyRing` and keeps the resulting :class:`~serving.types.Caller` (key id
and role) in a server-side session. The cookie carries a random session id signed with
itsdangerous, so a forged or altered cookie is rejected before any lookup. Expiry is decided on
the server (absolute lifetime and idle timeout, monotonic clock): an old cookie replayed after
expiry or sign-out finds nothing. Each session has its own CSRF token (synchronizer-token
pattern), which every state-changing form carries.

Sign-in itself is protected by a short-lived signed token in a separate cookie (double submit),
so another site cannot sign a browser in under the attacker's key.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner

from serving.console.config import ConsoleConfig
from serving.types import Caller

SESSION_COOKIE = "kgqa_console"
LOGIN_COOKIE = "kgqa_console_login"
LOGIN_TOKEN_TTL_S = 3600


@dataclass
class ConsoleSession:
    """A signed-in browser: who it is, its CSRF token, and the questions it posted for streaming."""

    sid: str
    caller: Caller
    csrf: str
    created: float
    last_seen: float
    tickets: dict[str, tuple[str, float]] = field(default_factory=dict)

    def check_csrf(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token.encode(), self.csrf.encode())


class SessionStore:
    """Live sessions in memory, keyed by session id.

    Args:
        config: lifetimes and limits.
        clock: seconds on a monotonic clock (tests pass their own).
    """

    def __init__(self, config: ConsoleConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        secret = config.secret_key or secrets.token_urlsafe(32)
        self._signer = Signer(secret, salt="kgqa-console-session")
        self._login_signer = TimestampSigner(secret, salt="kgqa-console-login")
        self._clock = clock
        self._sessions: OrderedDict[str, ConsoleSession] = OrderedDict()
        self._lock = threading.Lock()

    # -- sessions ---------------------------------------------------------------------------------
    def create(self, caller: Caller) -> tuple[ConsoleSession, str]:
        """A new session for ``caller`` and the cookie value that names it."""
        now = self._clock()
        session = ConsoleSession(secrets.token_urlsafe(32), caller, secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._prune(now)
            while len(self._sessions) >= self.config.max_sessions:
                self._sessions.popitem(last=False)
            self._sessions[session.sid] = session
        return session, self._signer.sign(session.sid).decode()

    def get(self, cookie: str | None) -> ConsoleSession | None:
        """The live session a cookie names (its idle clock restarted), or None."""
        sid = self._unsign(cookie)
        if sid is None:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if self._expired(session, now):
                del self._sessions[sid]
                return None
            session.last_seen = now
            return session

    def delete(self, cookie: str | None) -> None:
        sid = self._unsign(cookie)
        if sid is not None:
            with self._lock:
                self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)

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

    def _prune(self, now: float) -> None:
        for sid in [s for s, v in self._sessions.items() if self._expired(v, now)]:
            del self._sessions[sid]

    # -- questions posted for streaming -----------------------------------------------------------
    def add_ticket(self, session: ConsoleSession, question: str) -> str:
        """Keep ``question`` for the stream request that follows; returns its single-use ticket."""
        now = self._clock()
        ticket = secrets.token_urlsafe(16)
        with self._lock:
            session.tickets = {
                t: v for t, v in session.tickets.items() if now - v[1] <= self.config.ask_ticket_ttl_s
            }
            session.tickets[ticket] = (question, now)
        return ticket

    def take_ticket(self, session: ConsoleSession, ticket: str) -> str | None:
        """The question a ticket holds, once; None when unknown, used or expired."""
        with self._lock:
            entry = session.tickets.pop(ticket, None)
        if entry is None or self._clock() - entry[1] > self.config.ask_ticket_ttl_s:
            return None
        return entry[0]

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


__all__ = ["LOGIN_COOKIE", "SESSION_COOKIE", "ConsoleSession", "SessionStore"]
