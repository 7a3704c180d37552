"""`poll --once [--dry-run]`, `ingest --dry-run` and `status` as a person or a monitor runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from mailproc.sources.health import Cursor, Ledger
from mailproc.store import db
from tests.support.clirunner import invoker
from tests.support.daemon import (
    ENV,
    count,
    imap_source,
    messages,
    ready_engine,
    toml_config,
)
from tests.support.mailfactory import make_mail, message_id_of

TINA = "Tina <tina@example.com>"
TABLES = (
    db.Message,
    db.Incident,
    db.Event,
    db.ThreadRef,
    db.SourceState,
    db.Attachment,
    db.Outbox,
)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run mailproc in-process with a configuration file; `write` sets its text."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILPROC_CONFIG", raising=False)
    monkeypatch.delenv("MAILPROC_DATABASE_URL", raising=False)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "mailproc.toml"
    invoke = invoker("--config", str(config))
    invoke.write = config.write_text  # type: ignore[attr-defined]
    return invoke


def a_thread() -> list[bytes]:
    first = make_mail(subject="Mail server slow")
    reply = make_mail(
        sender=TINA, subject="Re: [PRIORITY P1] [ASSIGN tina]", in_reply_to=message_id_of(first)
    )
    return [first, reply, b"not a mail at all\n"]


def test_poll_dry_run_reports_what_would_happen_and_leaves_no_trace(
    cli, database_url, imap_mailbox, imap
):
    engine = ready_engine(database_url)
    for raw in a_thread():
        imap.append("INBOX", raw)
    cli.write(toml_config(database_url, {"support": imap_source(imap_mailbox)}))
    result = cli("poll", "--once", "--dry-run")
    assert (
        result.stdout
        == "support: dry run, nothing changed: 2 processed, 0 duplicate, 1 quarantined\n"
    )
    assert (
        "created INC-1 in email; notify acknowledgment to alice@example.org; "
        "would be moved to Processed"
    ) in result.stderr
    assert (
        "comment on INC-1; applied [PRIORITY P1] [ASSIGN tina]; notify assigned to "
        "alice@example.org, transcript to tina@example.com; would be moved to Processed"
    ) in result.stderr
    assert "unparseable: no header block" in result.stderr
    assert "would be moved to Quarantine" in result.stderr
    assert [count(engine, table) for table in TABLES] == [0] * len(TABLES)
    assert imap.list_folders() and [f[2] for f in imap.list_folders()] == ["INBOX"]
    imap.select_folder("INBOX", readonly=True)
    assert len(imap.search("UNSEEN")) == 3  # not even read
    imap.unselect_folder()
    # and the real pass afterwards does exactly what the dry run said
    assert cli("poll", "--once").stdout == "support: 2 processed, 0 duplicate, 1 quarantined\n"
    assert messages(imap) == 0
    engine.dispose()


def test_ingest_dry_run_stores_nothing(cli, sqlite_url, tmp_path):
    engine = ready_engine(sqlite_url)
    for n, raw in enumerate(a_thread()):
        (tmp_path / f"{n}.eml").write_bytes(raw)
    cli.write(toml_config(sqlite_url, {}))
    result = cli("ingest", "--dry-run", "0.eml", "1.eml", "2.eml")
    assert result.stdout.splitlines() == [
        "0.eml: would: created INC-1 in email; notify acknowledgment to alice@example.org",
        "1.eml: would: comment on INC-1; applied [PRIORITY P1] [ASSIGN tina]; notify assigned "
        "to alice@example.org, transcript to tina@example.com",
    ]
    assert "2.eml: would be quarantined: unparseable" in result.stderr
    assert "dry run, nothing stored: ingested: 2 processed, 0 duplicate, 1 quarantined" in (
        result.stderr
    )
    assert [count(engine, table) for table in TABLES] == [0] * len(TABLES)
    engine.dispose()


def test_status_is_zero_only_while_every_source_polls_successfully(cli, sqlite_url, imap_mailbox):
    engine = ready_engine(sqlite_url)
    cli.write(toml_config(sqlite_url, {}))
    assert "no mail sources configured" in cli("status", code=1).stdout

    cli.write(toml_config(sqlite_url, {"support": imap_source(imap_mailbox)}))
    assert cli("status", code=1).stdout == (
        "support: FAIL never polled successfully\noutbox: OK 0 waiting, 0 failed\n"
    )

    imap_mailbox.deliver(make_mail())
    cli("poll", "--once")  # one incident, and its acknowledgment waits in the outbox
    assert cli("status").stdout == (
        "support: OK last poll 0s ago, backlog 0\noutbox: OK 1 waiting, 0 failed\n"
    )
    report = json.loads(cli("status", "--json").stdout)
    assert report["healthy"] is True and report["checks"][0]["name"] == "support"

    long_ago = datetime.now(UTC) - timedelta(hours=1)
    Ledger(engine, lambda: long_ago).record("support", Cursor(), 42, ok=True)
    with engine.begin() as connection:  # and no sender has run for an hour
        connection.execute(update(db.Outbox).values(next_attempt_at=long_ago))
    assert cli("status", code=1).stdout == (
        "support: FAIL last successful poll 3600s ago (limit 900s); backlog 42\n"
        "outbox: FAIL 1 waiting, 0 failed; one has been due for 3600s\n"
    )
    cli("poll", "--once")
    Ledger(engine, lambda: datetime.now(UTC)).failed("support", "mailbox unavailable: refused")
    assert (
        "support: FAIL failing: mailbox unavailable: refused (0s ago"
        in cli("status", code=1).stdout
    )
    engine.dispose()


def test_status_and_poll_fail_with_a_reason_when_the_database_is_down(cli, imap_mailbox):
    down = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    cli.write(toml_config(down, {"support": imap_source(imap_mailbox)}))
    assert "mailproc: database error" in cli("status", code=1).stderr
    assert "mailproc: database error" in cli("poll", "--once", code=1).stderr


def test_poll_without_once_is_a_usage_error(cli, sqlite_url):
    cli.write(toml_config(sqlite_url, {}))
    assert "poll needs --once" in cli("poll", code=2).stderr
