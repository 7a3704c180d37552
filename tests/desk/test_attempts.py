"""Crash marks name their process: another daemon's mail in hand is no death (issue 13)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from mailproc.desk.attempts import LEASE, _started, alive, process_name

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def test_a_live_process_on_this_host_still_has_its_mail_in_hand() -> None:
    parent = os.getppid()
    owner = f"{socket.gethostname()}:{parent}:{_started(parent)}"
    assert alive(owner, NOW - timedelta(days=1), NOW, process_name())


def test_a_dead_process_or_a_reused_pid_is_a_death() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    owner = f"{socket.gethostname()}:{child.stdout.strip()}:12345"
    assert not alive(owner, NOW, NOW, process_name())
    parent = os.getppid()
    reused = f"{socket.gethostname()}:{parent}:{_started(parent)}0"  # same pid, other start
    assert not alive(reused, NOW, NOW, process_name())


def test_another_hosts_mark_is_a_death_after_the_lease_and_our_own_is_one_at_once() -> None:
    other = "elsewhere.example:42:1000"
    assert alive(other, NOW - LEASE + timedelta(seconds=1), NOW, process_name())
    assert not alive(other, NOW - LEASE, NOW, process_name())
    assert not alive(process_name(), NOW, NOW, process_name())


def test_marks_of_mails_gone_from_their_source_are_forgotten_after_two_weeks(desk) -> None:
    attempts = desk.attempts
    attempts.plan(["imap:support:7:41"])  # in hand when the process died; the mail then left
    desk.clock.advance(days=10)
    attempts.plan(["imap:support:7:42"])  # a newer death
    assert attempts.prune() == 0
    desk.clock.advance(days=5)
    assert attempts.prune() == 1  # the mark of 15 days ago went, the one of 5 days stays
    assert attempts.plan(["imap:support:7:42"]).suspects == {"imap:support:7:42": 1}
    assert attempts.plan(["imap:support:7:41"]).suspects == {}
