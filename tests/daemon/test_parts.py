"""The daemon's pure parts: backoff, state-change logging, batching, health verdicts, config."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from mailproc.config.settings import ConfigError, settings_from_dict
from mailproc.runtime.progress import LogLines
from mailproc.runtime.retry import Backoff, StateLog
from mailproc.runtime.wake import Wake
from mailproc.sources.health import source_checks
from mailproc.sources.imap import by_size
from mailproc.sources.maildir import split_name
from mailproc.store.figures import SourceRecord

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_success():
    backoff = Backoff(initial=1, cap=10)
    assert [backoff.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    backoff.reset()
    assert backoff.next_delay() == 1


def test_state_log_speaks_once_per_change_not_per_attempt(caplog):
    caplog.set_level(logging.INFO)
    ticks = Ticks()
    state = StateLog("support", logging.getLogger("test"), ticks)
    state.ok()
    assert caplog.records == []  # the first success is no news
    assert [state.failing("mailbox unavailable", f"refused #{n}") for n in range(5)] == [
        True,
        False,
        False,
        False,
        False,
    ]
    assert state.failing("database unavailable", "locked") is True
    ticks.now = 42
    state.ok()
    state.ok()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines == [
        (
            "WARNING",
            "support: mailbox unavailable: refused #0 (retrying with backoff; "
            "logged again when this changes)",
        ),
        (
            "WARNING",
            "support: database unavailable: locked (retrying with backoff; "
            "logged again when this changes)",
        ),
        (
            "INFO",
            "support: working again after 1 failed attempt(s) in 42s (was: database unavailable)",
        ),
    ]


@pytest.mark.parametrize(
    ("sizes", "limit", "runs"),
    [
        ([], 10, []),
        ([4, 4, 4], 10, [[1, 2], [3]]),
        ([30, 1, 1], 10, [[1], [2, 3]]),  # a big mail goes alone, never split or skipped
        ([1, 30, 1], 10, [[1], [2], [3]]),
        ([5, 5, 5, 5], 10, [[1, 2], [3, 4]]),
    ],
)
def test_batches_are_bounded_in_bytes(sizes, limit, runs):
    sized = [(uid, size) for uid, size in enumerate(sizes, start=1)]
    assert list(by_size(sized, limit)) == runs


def test_maildir_names_split_into_unique_part_and_flags():
    assert split_name("1700000000.M1P2.host:2,RS") == ("1700000000.M1P2.host", "RS")
    assert split_name("1700000000.M1P2.host") == ("1700000000.M1P2.host", "")


def record(ok_ago: float | None, error_ago: float | None = None, backlog: int = 0) -> SourceRecord:
    def at(ago: float | None) -> datetime | None:
        return None if ago is None else NOW - timedelta(seconds=ago)

    return SourceRecord(backlog, at(ok_ago), "mailbox unavailable: refused", at(error_ago))


@pytest.mark.parametrize(
    ("stored", "healthy", "detail"),
    [
        (None, False, "never polled successfully"),
        (record(None, 5), False, "never polled successfully: mailbox unavailable: refused"),
        (record(30, backlog=7), True, "last poll 30s ago, backlog 7"),
        (record(30, error_ago=60), True, "last poll 30s ago, backlog 0"),  # failed, recovered
        (
            record(30, error_ago=10),
            False,
            "failing: mailbox unavailable: refused (10s ago; last success 30s ago; backlog 0)",
        ),
        (record(901), False, "last successful poll 901s ago (limit 900s); backlog 0"),
    ],
)
def test_status_verdict_per_source(stored, healthy, detail):
    records = {} if stored is None else {"support": stored}
    (check,) = source_checks(["support"], records, NOW, 900)
    assert (check.name, check.healthy, check.detail) == ("support", healthy, detail)


def test_a_failing_source_is_a_warning_while_its_last_success_is_recent():
    (recent,) = source_checks(["support"], {"support": record(30, error_ago=10)}, NOW, 900)
    (stale,) = source_checks(["support"], {"support": record(1000, error_ago=10)}, NOW, 900)
    assert (recent.state, stale.state) == ("warning", "critical")


def test_progress_log_lines_come_every_few_seconds_and_at_the_end(caplog):
    caplog.set_level(logging.INFO)
    ticks = Ticks()
    progress = LogLines("support", 1000, every=10, clock=ticks)
    for _ in range(400):
        ticks.now += 0.05  # 20 mails a second
        progress.advance()
    progress.close()
    assert [r.getMessage() for r in caplog.records] == [
        "support: backlog: 200 of 1000 mails (20%), 20.0 mails/s",
        "support: backlog: 400 of 1000 mails (40%), 20.0 mails/s",
        "support: backlog pass done: 400 of 1000 mails (40%), 20.0 mails/s",
    ]


def test_a_wake_ends_a_wait_at_once_and_stays_set_until_cleared():
    wake = Wake()
    assert wake.wait(0.01) is False
    wake.set()
    wake.set()  # idempotent
    assert wake.wait(60) is True and wake.is_set()
    wake.clear()
    assert wake.wait(0) is False
    wake.close()


BASE = {
    "support_address": "support@example.com",
    "default_service": "it",
    "services": {"it": {}},
}
IMAP = {"kind": "imap", "host": "imap.example.com", "username": "support"}


@pytest.mark.parametrize(
    ("sources", "daemon", "fault"),
    [
        ({"s": IMAP}, {}, "m.toml: sources.s.imap: password_env: name the environment variable"),
        (
            {"s": {**IMAP, "auth": "xoauth2"}},
            {},
            "xoauth2 needs exactly one of oauth2_token_command, oauth2_token_file",
        ),
        (
            {"s": {**IMAP, "password_env": "P", "processed_folder": "INBOX"}},
            {},
            "processed_folder and quarantine_folder must differ from folder",
        ),
        (
            {"s": {**IMAP, "password_env": "P", "security": "none"}},
            {},
            "sources.s.imap.security: Input should be 'tls', 'starttls' or 'plain'",
        ),
        ({"s": {**IMAP, "kind": "pop3"}}, {}, "sources.s: Input tag 'pop3' found using 'kind'"),
        (
            {"s": {**IMAP, "password_env": "P", "service": "hr"}},
            {},
            "sources.s.service: unknown service 'hr'",
        ),
        ({"a b": {**IMAP, "password_env": "P"}}, {}, "sources.a b: use letters, digits"),
        (
            {"s": {**IMAP, "password_env": "P", "idle_seconds": 1000}},
            {},
            "sources.s: waits 1000s between polls, not less than daemon.status_max_age_seconds",
        ),
        (
            {},
            {"backoff_initial_seconds": 10, "backoff_max_seconds": 5},
            "backoff_initial_seconds is larger than backoff_max_seconds",
        ),
    ],
)
def test_source_configuration_errors_name_the_key(sources, daemon, fault):
    with pytest.raises(ConfigError) as info:
        settings_from_dict({**BASE, "sources": sources, "daemon": daemon}, "m.toml", {})
    assert fault in str(info.value)
    assert str(info.value).startswith("m.toml: ")


def test_imap_defaults_are_safe():
    settings = settings_from_dict(
        {**BASE, "sources": {"s": {**IMAP, "password_env": "P"}}}, "m.toml", {}
    )
    source = settings.sources["s"]
    assert source.kind == "imap"
    assert (source.security, source.effective_port, source.settle) == ("tls", 993, "move")
    assert (source.processed_folder, source.quarantine_folder) == ("Processed", "Quarantine")
