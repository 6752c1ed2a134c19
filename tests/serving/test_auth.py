"""API keys: parsing, constant-time lookup, key ids that never reveal the key, development keys."""

from __future__ import annotations

import hashlib
import stat

import pytest

from kgqa.errors import ConfigError, Unauthenticated
from serving.auth import KeyRing, bearer_token, ensure_dev_keys, key_id, load_keyring
from serving.types import Role


def test_keys_from_env_string_map_to_roles_and_ids():
    ring = KeyRing.from_settings("alpha-key=reader, beta=key=auditor ,", None)
    assert len(ring) == 2
    reader = ring.authenticate("alpha-key")
    assert reader.role == Role.READER
    assert reader.key_id == "key-" + hashlib.sha256(b"alpha-key").hexdigest()[:12]
    assert "alpha" not in reader.key_id
    assert ring.authenticate("beta=key").role == Role.AUDITOR  # '=' inside a key is kept


def test_keys_file_allows_comments_and_blank_lines(tmp_path):
    path = tmp_path / "keys"
    path.write_text("# team keys\n\nk1=admin\n  # indented comment\nk2 = Editor\n", encoding="utf-8")
    ring = KeyRing.from_settings("k3=reader", path)
    assert [ring.authenticate(k).role for k in ("k1", "k2", "k3")] == [Role.ADMIN, Role.EDITOR, Role.READER]
    assert ring.source == f"KGQA_API_KEYS + {path}"


@pytest.mark.parametrize(
    ("api_keys", "needle"),
    [("k1=superuser", "unknown role 'superuser'"), ("=reader", "expected KEY=ROLE"), ("k1", "KEY=ROLE")],
)
def test_malformed_entries_are_config_errors(api_keys, needle):
    with pytest.raises(ConfigError, match=needle):
        KeyRing.from_settings(api_keys, None)


def test_a_malformed_entry_is_not_quoted_because_it_may_be_a_key():
    with pytest.raises(ConfigError) as err:
        KeyRing.from_settings("sk-live-0123456789abcdef", None)
    assert "sk-live" not in str(err.value)


def test_unknown_role_in_file_names_the_line(tmp_path):
    path = tmp_path / "keys"
    path.write_text("k1=reader\nk2=root\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"keys:2: unknown role"):
        KeyRing.from_settings(None, path)


def test_same_key_with_two_roles_is_refused():
    with pytest.raises(ConfigError, match="two roles"):
        KeyRing.from_settings("k=reader,k=admin", None)


@pytest.mark.parametrize("key", [None, "", "unknown", "alpha-key "])
def test_missing_or_unknown_keys_are_unauthenticated(key):
    ring = KeyRing.from_settings("alpha-key=reader", None)
    with pytest.raises(Unauthenticated):
        ring.authenticate(key)


def test_key_id_is_a_short_digest():
    assert key_id("s3cret") == "key-" + hashlib.sha256(b"s3cret").hexdigest()[:12]
    assert key_id("s3cret") != key_id("s3cret2")


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


def test_dev_keys_are_created_once_private_and_cover_every_role(tmp_path):
    path = ensure_dev_keys(tmp_path / "home")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text(encoding="utf-8")
    assert ensure_dev_keys(tmp_path / "home") == path and path.read_text(encoding="utf-8") == first
    ring = KeyRing.from_settings(None, path)
    keys = [line.split("=")[0] for line in first.splitlines() if line and not line.startswith("#")]
    assert sorted(ring.authenticate(k).role for k in keys) == sorted(Role)
    assert len(set(keys)) == len(Role) and all(len(k) >= 40 for k in keys)


def test_load_keyring_prefers_configured_keys_and_falls_back_to_dev_keys(tmp_path):
    configured = load_keyring("k=reader", None, tmp_path)
    assert configured.authenticate("k").role == Role.READER
    assert not (tmp_path / "api_keys").exists()
    dev = load_keyring(None, None, tmp_path)
    assert len(dev) == len(Role) and dev.source.startswith(f"{tmp_path / 'api_keys'} (development keys")
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no API keys"):
        load_keyring(None, empty, tmp_path)
