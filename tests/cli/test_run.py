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


def test_status_judges_the_sources_with_monitoring_exit_codes(cli, sqlite_url, imap_mailbox):
    engine = ready_engine(sqlite_url)
    cli.write(toml_config(sqlite_url, {"support": imap_source(imap_mailbox)}))
    assert cli("status", code=2).stdout == (
        "mailproc CRITICAL: support | backlog=0 outbox_pending=0 outbox_failed=0 "
        "outbox_oldest_due=0s open=0\n"
        "support: CRITICAL never polled successfully\noutbox: OK 0 waiting, 0 failed\n"
    )

    imap_mailbox.deliver(make_mail())
    cli("poll", "--once")  # one incident, and its acknowledgment waits in the outbox
    assert cli("status").stdout.splitlines()[1:] == [
        "support: OK last poll 0s ago, backlog 0",
        "outbox: OK 1 waiting, 0 failed",
    ]
    report = json.loads(cli("status", "--json").stdout)
    assert (report["state"], report["exit_code"]) == ("ok", 0)
    assert report["checks"][0] == {
        "name": "support",
        "healthy": True,
        "detail": "last poll 0s ago, backlog 0",
        "warning": False,
    }
    assert report["sources"]["support"]["backlog"] == 0
    assert report["sources"]["support"]["last_ok_age_seconds"] < 60
    assert report["outbox"]["pending"] == 1 and report["outbox"]["failed"] == 0
    assert report["mail"]["stored"] == {"processed": 1}
    assert report["incidents"]["open"] == 1
    assert report["incidents"]["by_service"]["email"]["open"] == 1

    cli("poll", "--once")
    Ledger(engine, lambda: datetime.now(UTC)).failed("support", "mailbox unavailable: refused")
    assert (  # failing, but mail flowed moments ago: a warning
        "support: WARNING failing: mailbox unavailable: refused (0s ago"
        in cli("status", code=1).stdout
    )

    long_ago = datetime.now(UTC) - timedelta(hours=1)
    Ledger(engine, lambda: long_ago).record("support", Cursor(), 42, ok=True)
    with engine.begin() as connection:  # and no sender has run for an hour
        connection.execute(update(db.Outbox).values(next_attempt_at=long_ago))
    assert cli("status", code=2).stdout.splitlines()[1:] == [
        "support: CRITICAL failing: mailbox unavailable: refused (0s ago; last success 3600s "
        "ago; backlog 42)",
        "outbox: CRITICAL 1 waiting, 0 failed; one has been due for 3600s",
    ]
    engine.dispose()


def test_status_of_a_pipe_or_cron_setup_judges_what_it_has(cli, sqlite_url):
    """No [sources.*]: mail arrives by `ingest`; that is no failure."""
    engine = ready_engine(sqlite_url)
    cli.write(toml_config(sqlite_url, {}))
    out = cli("status").stdout.splitlines()
    assert out[0].startswith("mailproc OK | backlog=0")
    assert out[1:] == [
        "intake: OK by `mailproc ingest` (no [sources.*]); no mail stored yet",
        "outbox: OK 0 waiting, 0 failed",
    ]
    cli("ingest", "-", input=make_mail())
    assert "intake: OK by `mailproc ingest` (no [sources.*]); last mail stored" in (
        cli("status").stdout
    )
    engine.dispose()


def test_status_is_critical_and_poll_fails_with_a_reason_when_the_database_is_down(
    cli, imap_mailbox
):
    down = "postgresql+psycopg://nobody@127.0.0.1:9/none"
    cli.write(toml_config(down, {"support": imap_source(imap_mailbox)}))
    out = cli("status", code=2).stdout
    assert out.startswith("mailproc CRITICAL: database\n")
    assert "database: CRITICAL postgresql+psycopg://nobody@127.0.0.1:9/none: " in out
    assert json.loads(cli("status", "--json", code=2).stdout)["state"] == "critical"
    assert "127.0.0.1:9/none: OperationalError" in cli("poll", "--once", code=1).stderr


def test_poll_without_once_is_a_usage_error(cli, sqlite_url):
    cli.write(toml_config(sqlite_url, {}))
    assert "poll needs --once" in cli("poll", code=2).stderr
