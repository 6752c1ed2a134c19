"""Console sessions, CSRF tokens, diffs and the vendored assets: pure logic, no server."""

from __future__ import annotations

import hashlib
from importlib import resources

import pytest

from serving.console.config import ConsoleConfig
from serving.console.diff import char_diff, highlight
from serving.console.sessions import SessionStore
from serving.types import Caller, Role

CALLER = Caller("key-0123456789ab", Role.AUDITOR)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _store(**config) -> tuple[SessionStore, Clock]:
    clock = Clock()
    return SessionStore(ConsoleConfig(**config), clock=clock), clock


def test_a_session_is_found_by_its_signed_cookie_and_keeps_only_the_key_id():
    store, _ = _store()
    session, cookie = store.create(CALLER)
    assert store.get(cookie) == session and session.caller == CALLER
    assert session.sid in cookie and cookie != session.sid  # signed, not the bare id


def test_a_forged_or_altered_cookie_finds_nothing():
    store, _ = _store()
    session, cookie = store.create(CALLER)
    assert store.get(session.sid) is None  # the id without its signature
    # alter a character inside the signature: the last one's low bits are base64 padding, and
    # changing only those (A -> B) decodes to the same bytes, which made this test flaky
    sid, sig = cookie.rsplit(".", 1)
    for i in (0, len(sig) // 2):
        altered = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1 :]
        assert store.get(f"{sid}.{altered}") is None
    other, _ = _store()
    assert other.get(other.create(CALLER)[1]) is not None
    assert store.get(other.create(CALLER)[1]) is None  # another key signed it
    assert store.get("") is None and store.get(None) is None


def test_sessions_expire_on_the_server_absolute_and_idle():
    store, clock = _store(session_ttl_s=100, idle_timeout_s=30)
    _, cookie = store.create(CALLER)
    clock.now += 29
    assert store.get(cookie) is not None  # used: the idle clock restarts
    clock.now += 29
    assert store.get(cookie) is not None
    clock.now += 31
    assert store.get(cookie) is None  # idle too long
    _, cookie = store.create(CALLER)
    for _ in range(4):
        clock.now += 25
        assert store.get(cookie) is not None
    clock.now += 25
    assert store.get(cookie) is None  # past the absolute lifetime though always used
    assert len(store) == 0


def test_sign_out_ends_the_session_for_every_copy_of_the_cookie():
    store, _ = _store()
    _, cookie = store.create(CALLER)
    store.delete(cookie)
    assert store.get(cookie) is None


def test_csrf_token_is_per_session_and_compared_exactly():
    store, _ = _store()
    a, _ = store.create(CALLER)
    b, _ = store.create(CALLER)
    assert a.csrf != b.csrf
    assert a.check_csrf(a.csrf) and not a.check_csrf(b.csrf)
    assert not a.check_csrf("") and not a.check_csrf(None) and not a.check_csrf(a.csrf[:-1])


def test_sign_in_token_must_match_its_unexpired_cookie():
    store, _ = _store()
    token, cookie = store.login_token()
    assert store.check_login_token(cookie, token)
    other, _ = store.login_token()
    assert not store.check_login_token(cookie, other)
    assert not store.check_login_token(None, token) and not store.check_login_token(cookie, "")
    assert not store.check_login_token(token, token)  # an unsigned cookie


def test_ask_tickets_are_single_use_and_expire():
    store, clock = _store(ask_ticket_ttl_s=10)
    session, _ = store.create(CALLER)
    ticket = store.add_ticket(session, "质量保证金按多少比例预留？")
    assert store.take_ticket(session, ticket) == "质量保证金按多少比例预留？"
    assert store.take_ticket(session, ticket) is None
    late = store.add_ticket(session, "q")
    clock.now += 11
    assert store.take_ticket(session, late) is None


def test_the_oldest_session_goes_past_the_limit():
    store, _ = _store(max_sessions=2)
    _, first = store.create(CALLER)
    _, second = store.create(CALLER)
    _, third = store.create(CALLER)
    assert store.get(first) is None and store.get(second) and store.get(third)


def test_workers_sharing_a_state_dir_share_sessions_tickets_and_sign_out(tmp_path):
    """`kgqa serve --workers 2`: the kernel hands each connection to either process."""
    import stat

    config = ConsoleConfig(state_dir=str(tmp_path / "console"))
    clock = Clock()
    first, second = SessionStore(config, clock=clock), SessionStore(config, clock=clock)
    session, cookie = first.create(CALLER)
    seen = second.get(cookie)
    assert seen is not None and seen.caller == CALLER and seen.csrf == session.csrf
    ticket = first.add_ticket(session, "质量保证金按多少比例预留？")  # posted to one worker,
    assert second.take_ticket(seen, ticket) == "质量保证金按多少比例预留？"  # streamed from the other
    assert first.take_ticket(session, ticket) is None  # once
    clock.now += 5
    second.get(cookie)  # in use on the second worker: the first sees the idle clock restarted
    assert first.get(cookie).last_seen == clock.now
    second.delete(cookie)  # signed out on one worker: gone on both
    assert first.get(cookie) is None
    for name in ("secret", "sessions.sqlite3", "sessions.sqlite3-wal"):
        assert stat.S_IMODE((tmp_path / "console" / name).stat().st_mode) == 0o600, name
    # a restart keeps the secret and the sessions
    _, kept = first.create(CALLER)
    first.close()
    assert SessionStore(config, clock=clock).get(kept) is not None


def test_a_ticket_belongs_to_its_session():
    store, _ = _store()
    mine, _ = store.create(CALLER)
    other, _ = store.create(CALLER)
    ticket = store.add_ticket(mine, "q")
    assert store.take_ticket(other, ticket) is None
    assert store.take_ticket(mine, ticket) == "q"


def test_char_diff_rebuilds_both_texts_and_marks_the_change():
    old, new = "经办人员应当在费用发生后三十日内提交报销单。", "经办人员应当在费用发生后十五日内提交报销单。"
    diff = char_diff(old, new)
    assert "".join(s.text for s in diff if s.op != "insert") == old
    assert "".join(s.text for s in diff if s.op != "delete") == new
    assert {s.text for s in diff if s.op == "delete"} | {s.text for s in diff if s.op == "insert"} >= {"五"}
    assert all(s.op == "equal" for s in char_diff(old, old))


def test_highlight_marks_only_a_valid_span():
    text = "单笔报销金额在五千元以下的，由项目经理审批"
    h = highlight(text, 7, 11)
    assert (h.before, h.mark, h.after) == ("单笔报销金额在", "五千元以", "下的，由项目经理审批")
    for start, end in ((None, None), (5, 5), (-1, 3), (3, 99), (8, 2)):
        assert highlight(text, start, end).mark == ""


def test_vendored_htmx_is_the_pinned_npm_release():
    static = resources.files("serving.console") / "static"
    pinned = (static / "VENDORED.sha256").read_text().split("\n")
    for line in filter(None, pinned):
        digest, name = line.split()
        assert hashlib.sha256((static / name).read_bytes()).hexdigest() == digest, name
    assert "Zero-Clause BSD" in (static / "LICENSE-htmx.txt").read_text()


def test_a_chain_step_of_no_records_is_refused_at_start():
    from kgqa.errors import ConfigError

    with pytest.raises(ConfigError, match="CHAIN_STEP"):
        ConsoleConfig(chain_step=0)


def test_a_question_kept_for_its_stream_reaches_the_disk_redacted(tmp_path):
    """Under `kgqa serve` the store is a file: a question waiting for its stream is personal data
    at rest unless the store redacts it (as the console's does, with the service's redactor)."""
    from ingest.redact import Redactor

    phone, resident_id = "13812345678", "110101199003077635"  # a valid check digit
    wrong_id = "110101199003077634"  # a mistyped ID is still someone's
    redactor = Redactor()
    store = SessionStore(ConsoleConfig(state_dir=str(tmp_path)), redact=lambda text: redactor.redact(text)[0])
    session, _ = store.create(CALLER)
    ticket = store.add_ticket(
        session, f"我的手机{phone}，身份证{resident_id}，同事的身份证{wrong_id}，存货如何计量？"
    )
    kept = store.take_ticket(session, ticket)
    assert kept is not None and "存货如何计量" in kept
    store.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("sessions"))
    for datum in (phone, resident_id, wrong_id):
        assert datum not in kept and datum.encode() not in on_disk
