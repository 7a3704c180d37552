"""A mail that kills the process handling it (out of memory, a crash, a signal) does not stop
intake: after the process is restarted the mail is tried alone, and after
`limits.crashes_before_quarantine` deaths (2) it is quarantined unparsed, while the rest of
the mailbox is applied. Real Dovecot and PostgreSQL; the daemon as a process, killed with
SIGKILL by tests/support/crashing.py whenever it parses the poison mail."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.store import db
from tests.support.crashing import CRASH_HEADER
from tests.support.daemon import count, imap_source, messages, ready_engine, toml_config, wait_until
from tests.support.mailfactory import make_mail

CRASHING = (str(Path(__file__).parents[2] / "tests" / "support" / "crashing.py"),)


def outcomes(engine) -> dict[str, tuple[str, str | None]]:
    with Session(engine) as session:
        rows = session.execute(select(db.Message.subject, db.Message.outcome, db.Message.reason))
        return {row.subject: (row.outcome, row.reason) for row in rows}


def poison(subject: str = "poison") -> bytes:
    return CRASH_HEADER + b"\r\n" + make_mail(subject=subject, sender="eve@example.net")


def test_a_mail_that_kills_the_daemon_is_quarantined_and_the_rest_applied(
    pg_url, imap_mailbox, imap, daemon_process
):
    engine = ready_engine(pg_url)
    for n in range(6):
        imap.append("INBOX", poison() if n == 2 else make_mail(subject=f"mail {n}"))
    source = imap_source(imap_mailbox, batch_size=10)
    daemon = daemon_process(toml_config(pg_url, {"support": source}), CRASHING)
    deaths = 0
    while deaths < 5:
        daemon.start()
        try:
            code = daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:  # alive: it got past the poison mail
            break
        assert code == -signal.SIGKILL, daemon.text()
        deaths += 1
    wait_until(lambda: count(engine, db.Message) == 6 and messages(imap) == 0, timeout=30)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    assert deaths == 2  # in its group, then alone; the third start quarantines it
    found = outcomes(engine)
    assert found.pop("") == ("quarantined", "crashed the processor 2 times")  # never parsed
    assert found == {f"mail {n}": ("processed", None) for n in (0, 1, 3, 4, 5)}
    assert messages(imap, "Quarantine") == 1
    assert count(engine, db.Attempt) == 0
