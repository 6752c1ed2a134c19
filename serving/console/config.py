"""The console's settings (``Settings.console``, ``KGQA_CONSOLE__*``)."""

from __future__ import annotations

from dataclasses import dataclass

from kgqa.errors import ConfigError


@dataclass(frozen=True)
class ConsoleConfig:
    """How console sessions behave.

    Attributes:
        session_ttl_s: a session ends this long after sign-in, used or not (server-side expiry).
        idle_timeout_s: a session unused this long ends earlier.
        secret_key: signs session cookies and sign-in form tokens; None = the one kept beside the
            sessions in ``state_dir`` (made once), or a random key per process without it.
        cookie_secure: mark cookies ``Secure``; None = when the request came over https (set True
            behind a TLS-terminating proxy that forwards plain http).
        max_sessions: most live sessions kept; the oldest is dropped past it.
        page_size: answers per page of the audit list.
        export_limit: most rows one CSV export holds.
        ask_ticket_ttl_s: a question posted for streaming must be picked up within this time.
        state_dir: a folder for the session store and its signing secret, shared by every
            worker of ``kgqa serve --workers N`` (it sets ``$KGQA_HOME/console``); None = in
            this process's memory.
        chain_step: records the page's chain check walks per request (each request stays short
            however long the trail grows; the page asks for the next step itself).
    """

    session_ttl_s: float = 8 * 3600.0
    idle_timeout_s: float = 30 * 60.0
    secret_key: str | None = None
    cookie_secure: bool | None = None
    max_sessions: int = 10_000
    page_size: int = 50
    export_limit: int = 10_000
    ask_ticket_ttl_s: float = 60.0
    state_dir: str | None = None
    chain_step: int = 300

    def __post_init__(self) -> None:
        # a step of 0 records would walk nothing and report the next record missing
        if self.chain_step < 1:
            raise ConfigError(f"KGQA_CONSOLE__CHAIN_STEP must be 1 or more, got {self.chain_step}")


__all__ = ["ConsoleConfig"]
