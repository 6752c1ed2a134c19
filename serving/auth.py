"""API keys -> callers: the one authentication step shared by gRPC and REST.

Keys map to roles (``reader``, ``auditor``, ``editor``, ``admin``). They come from
``KGQA_API_KEYS="key1=reader,key2=auditor"`` and/or ``KGQA_API_KEYS_FILE`` (one ``key=role`` per
line; ``#`` comments and blank lines allowed). Only SHA-256 digests of the keys are kept in
memory, a presented key is compared against every stored digest with
:func:`hmac.compare_digest` (no early exit, so timing says nothing about which key nearly
matched), and a caller is identified everywhere (audit trail, logs) by its key id
``key-<first 12 hex of sha256(key)>``, never by the key.

Development keys: when no key is configured, ``kgqa serve`` calls :func:`ensure_dev_keys`, which
creates ``$KGQA_HOME/api_keys`` (mode 0600) with one random key per role on first use and reuses
it afterwards. Read the keys from that file to call the local server; set ``KGQA_API_KEYS`` or
``KGQA_API_KEYS_FILE`` in production.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from kgqa.errors import ConfigError, Unauthenticated
from serving.types import Caller, Role

DEV_KEYS_FILENAME = "api_keys"


def key_id(key: str) -> str:
    """The public id of a key: safe to log and to store in the audit trail."""
    return "key-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def _parse_entry(entry: str, where: str) -> tuple[str, Role]:
    key, sep, role_name = entry.strip().rpartition("=")
    key = key.strip()
    if not sep or not key:
        # not even a prefix of the entry: without "=" it is most likely a bare key
        raise ConfigError(f"{where}: expected KEY=ROLE (the entry is not shown: it may be a key)")
    try:
        role = Role.parse(role_name)
    except KeyError:
        roles = ", ".join(r.name.lower() for r in Role)
        raise ConfigError(f"{where}: unknown role {role_name.strip()!r}; use one of {roles}") from None
    return key, role


@dataclass(frozen=True)
class _Entry:
    digest: bytes
    caller: Caller


class KeyRing:
    """The configured API keys (as digests) and the role each grants.

    Args:
        keys: ``(key, role)`` pairs. A key listed twice with different roles is a ConfigError.
        source: where the keys came from, for the startup message (never the keys).
    """

    def __init__(self, keys: list[tuple[str, Role]], source: str = "") -> None:
        by_digest: dict[bytes, _Entry] = {}
        for key, role in keys:
            digest = _digest(key)
            known = by_digest.get(digest)
            if known is not None and known.caller.role != role:
                raise ConfigError(f"key {key_id(key)} is listed with two roles; keep one")
            by_digest[digest] = _Entry(digest, Caller(key_id(key), role))
        self._entries = tuple(by_digest.values())
        self.source = source

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_settings(cls, api_keys: str | None, api_keys_file: Path | None) -> KeyRing:
        """Keys from ``KGQA_API_KEYS`` and ``KGQA_API_KEYS_FILE`` (both may be given).

        Raises:
            ConfigError: a malformed entry, an unknown role, or an unreadable keys file.
        """
        keys: list[tuple[str, Role]] = []
        sources: list[str] = []
        if api_keys:
            entries = [e for e in api_keys.split(",") if e.strip()]
            keys += [_parse_entry(e, "KGQA_API_KEYS") for e in entries]
            sources.append("KGQA_API_KEYS")
        if api_keys_file is not None:
            keys += _read_keys_file(Path(api_keys_file))
            sources.append(str(api_keys_file))
        return cls(keys, source=" + ".join(sources))

    def authenticate(self, key: str | None) -> Caller:
        """The caller a key belongs to.

        Raises:
            Unauthenticated: no key, or a key that is not configured.
        """
        if not key:
            raise Unauthenticated("missing API key; send `authorization: Bearer <key>`")
        digest = _digest(key)
        found: Caller | None = None
        for entry in self._entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry.caller
        if found is None:
            raise Unauthenticated("unknown API key; ask an administrator for a key")
        return found


def bearer_token(header: str | None) -> str | None:
    """The key in an ``Authorization: Bearer <key>`` value (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _read_keys_file(path: Path) -> list[tuple[str, Role]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the API keys file {path}: {exc.strerror}") from exc
    keys = []
    for n, line in enumerate(lines, start=1):
        text = line.strip()
        if text and not text.startswith("#"):
            keys.append(_parse_entry(text, f"{path}:{n}"))
    return keys


def ensure_dev_keys(home: Path) -> Path:
    """Create ``home/api_keys`` with one random key per role unless it exists; return its path.

    For development only: ``kgqa serve`` uses it when neither ``KGQA_API_KEYS`` nor
    ``KGQA_API_KEYS_FILE`` is set, so a fresh checkout can be called without inventing keys. The
    file is created with mode 0600 (``O_EXCL``, so a concurrent start never overwrites it).
    """
    path = Path(home) / DEV_KEYS_FILENAME
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "# kgqa development API keys (created by `kgqa serve`); KEY=ROLE per line.\n"
    body += "# Production: set KGQA_API_KEYS or KGQA_API_KEYS_FILE instead.\n"
    body += "".join(f"{secrets.token_urlsafe(32)}={role.name.lower()}\n" for role in Role)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(body)
    return path


def load_keyring(api_keys: str | None, api_keys_file: Path | None, home: Path) -> KeyRing:
    """The keys to serve with: the configured ones, or the development keys under ``home``.

    ``KeyRing.source`` says which (``kgqa serve`` prints it, never the keys).

    Raises:
        ConfigError: the configured keys are malformed, or a configured keys file holds none.
    """
    if api_keys or api_keys_file is not None:
        ring = KeyRing.from_settings(api_keys, api_keys_file)
        if not len(ring):
            raise ConfigError(f"{ring.source} holds no API keys; add KEY=ROLE entries")
        return ring
    path = ensure_dev_keys(home)
    ring = KeyRing.from_settings(None, path)
    ring.source = f"{path} (development keys: no KGQA_API_KEYS or KGQA_API_KEYS_FILE set)"
    return ring


__all__ = ["KeyRing", "bearer_token", "ensure_dev_keys", "key_id", "load_keyring"]
