"""The daemon against a real Dovecot: IDLE, polling, settling, reconnection, UIDVALIDITY, TLS."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.config.settings import ConfigError
from mailproc.daemon.loop import poll_once
from mailproc.desk.mail import Desk
from mailproc.inbound.parse import parse_mail as parse
from mailproc.runtime.wake import Wake
from mailproc.sources.imap import ImapSource
from mailproc.store import db
from mailproc.store.queries import get_incident, list_incidents
from tests.support.daemon import (
    ENV,
    count,
    imap_source,
    make_settings,
    messages,
    polled_once,
    ready_engine,
    running,
    wait_until,
    with_logout,
    worker,
    xoauth2_token,
)
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.servers import ImapAccount

MAILPROC = [sys.executable, "-m", "mailproc"]
DELETED = rb"\Deleted"
GARBAGE = b"this is not a mail, it has no header block\r\n"


def test_idle_brings_a_new_mail_in_and_moves_it_to_processed(
    database_url, imap_mailbox, imap, caplog
):
    caplog.set_level(logging.INFO)
    engine = ready_engine(database_url)
    # Polling and the IDLE refresh are 10 minutes away: only IDLE can bring the mail in time.
    source = imap_source(imap_mailbox, idle_seconds=600, poll_seconds=600, service="network")
    settings = make_settings(database_url, {"support": source})
    with running(settings):
        wait_until(lambda: polled_once(engine), what="the first pass")
        raw = make_mail(subject="VPN drops every hour", sender="Bob <bob@example.org>")
        imap.append("INBOX", raw)
        wait_until(lambda: count(engine, db.Incident) == 1, what="the incident")
        wait_until(lambda: messages(imap, "Processed") == 1, what="the move")
    (incident,) = list_incidents(engine)
    assert (incident.title, incident.service) == ("VPN drops every hour", "network")
    assert messages(imap) == 0
    (line,) = [r for r in caplog.records if getattr(r, "message_id", None)]
    assert line.levelno == logging.INFO
    assert (line.message_id, line.sender, line.incident) == (
        message_id_of(raw),
        "bob@example.org",
        incident.number,
    )
    assert line.action == "moved to Processed"
    assert "created INC-1 in network" in line.getMessage()
    engine.dispose()


def test_polling_when_the_server_offers_neither_idle_nor_move(sqlite_url, legacy_mailbox):
    engine = ready_engine(sqlite_url)
    settings = make_settings(sqlite_url, {"support": imap_source(legacy_mailbox, poll_seconds=0.1)})
    client = legacy_mailbox.connect()
    try:
        with running(settings) as daemon:
            wait_until(lambda: polled_once(engine), what="the first pass")
            assert b"IDLE" not in worker(daemon).source._caps  # type: ignore[attr-defined]
            client.append("INBOX", make_mail(subject="one"))
            client.append("INBOX", make_mail(subject="two"))
            wait_until(lambda: messages(client, "Processed") == 2, what="both moved")
        assert [i.title for i in list_incidents(engine)] == ["one", "two"]
        assert messages(client) == 0  # COPY, \Deleted, then UID EXPUNGE of exactly those
    finally:
        with_logout(client)
    engine.dispose()


def test_unparseable_mail_goes_to_the_quarantine_folder_with_its_reason_stored(
    sqlite_url, imap_mailbox, imap
):
    engine = ready_engine(sqlite_url)
    imap.append("INBOX", GARBAGE)
    imap.append("INBOX", make_mail(subject="fine"))
    settings = make_settings(sqlite_url, {"support": imap_source(imap_mailbox)})
    (result,) = poll_once(settings, ENV, [])
    assert result.ok and result.text == "1 processed, 0 duplicate, 1 quarantined"
    assert (messages(imap), messages(imap, "Processed"), messages(imap, "Quarantine")) == (0, 1, 1)
    with Session(engine) as session:
        row = session.scalars(select(db.Message).where(db.Message.outcome == "quarantined")).one()
    assert row.reason.startswith("unparseable: no header block") and row.raw == GARBAGE
    assert row.source == "support"
    engine.dispose()


def test_seen_mode_flags_mail_leaves_it_in_place_and_never_reads_it_twice(
    sqlite_url, imap_mailbox, imap
):
    engine = ready_engine(sqlite_url)
    source = imap_source(imap_mailbox, settle="seen", idle=False, poll_seconds=0.1)
    settings = make_settings(sqlite_url, {"support": source})
    imap.append("INBOX", make_mail(subject="unread"))
    imap.append("INBOX", make_mail(subject="read by a person first"), flags=[rb"\Seen"])
    imap.append("INBOX", GARBAGE)
    with running(settings):
        wait_until(lambda: count(engine, db.Message) == 3, what="three mails stored")
        imap.append("INBOX", make_mail(subject="later"))
        wait_until(lambda: count(engine, db.Incident) == 3, what="the later one")
        wait_until(lambda: messages(imap, "Quarantine") == 1, what="the quarantine")
    imap.select_folder("INBOX")
    assert len(imap.search("ALL")) == 3 and imap.search("UNSEEN") == []
    titles = [i.title for i in list_incidents(engine)]
    assert titles == ["unread", "read by a person first", "later"]
    (again,) = poll_once(settings, ENV, [])  # a restart: the cursor says all is done
    assert again.text == "0 processed, 0 duplicate, 0 quarantined"
    engine.dispose()


def test_a_mail_committed_before_a_crash_is_only_moved_when_met_again(
    sqlite_url, imap_mailbox, imap
):
    """The state SIGKILL leaves between commit and MOVE: stored, still in INBOX."""
    engine = ready_engine(sqlite_url)
    settings = make_settings(sqlite_url, {"support": imap_source(imap_mailbox)})
    raw = make_mail(subject="committed, not moved")
    imap.append("INBOX", raw)
    Desk(settings, engine).handle(raw)
    (result,) = poll_once(settings, ENV, [])
    assert result.text == "0 processed, 1 duplicate, 0 quarantined"
    assert (messages(imap), messages(imap, "Processed")) == (0, 1)
    assert count(engine, db.Incident) == 1 and count(engine, db.Event) == 1
    engine.dispose()


def test_a_uidvalidity_change_rereads_the_folder_without_loss_or_reprocessing(
    sqlite_url, imap_mailbox, imap, caplog
):
    """Seen mode keeps a UID cursor; a recreated folder numbers its mails anew."""
    engine = ready_engine(sqlite_url)
    source = imap_source(imap_mailbox, folder="Support", settle="seen")
    settings = make_settings(sqlite_url, {"support": source})
    old = [make_mail(subject=f"old {n}") for n in range(3)]
    imap.create_folder("Support")
    for raw in old:
        imap.append("Support", raw)
    assert poll_once(settings, ENV, [])[0].text == "3 processed, 0 duplicate, 0 quarantined"

    imap.delete_folder("Support")
    imap.create_folder("Support")
    imap.append("Support", make_mail(subject="new, now UID 1"))
    for raw in old:
        imap.append("Support", raw)
    caplog.set_level(logging.WARNING)
    (result,) = poll_once(settings, ENV, [])
    assert result.text == "1 processed, 3 duplicate, 0 quarantined"
    assert any("UIDVALIDITY of Support changed" in r.getMessage() for r in caplog.records)
    assert [i.title for i in list_incidents(engine)] == [
        "old 0",
        "old 1",
        "old 2",
        "new, now UID 1",
    ]
    assert count(engine, db.Event) == 4
    engine.dispose()


def test_dovecot_going_away_is_logged_once_and_the_daemon_carries_on(
    sqlite_url, imap_mailbox, caplog
):
    caplog.set_level(logging.INFO)
    engine = ready_engine(sqlite_url)
    settings = make_settings(sqlite_url, {"support": imap_source(imap_mailbox)})
    server = imap_mailbox.server
    with running(settings) as daemon:
        imap_mailbox.deliver(make_mail(subject="before"))
        # Killed amid a MOVE, Dovecot leaves a lock behind that stalls it for a minute: kill it
        # while the daemon idles, after the move.
        wait_until(lambda: processed(imap_mailbox) == 1, what="the first mail")
        server.kill()
        wait_until(lambda: worker(daemon).state.attempts >= 4, what="a few failed reconnects")
        server.start()
        imap_mailbox.deliver(make_mail(subject="after"))
        wait_until(lambda: count(engine, db.Incident) == 2, what="the mail after the outage")
        wait_until(lambda: worker(daemon).state.state == "ok", what="the end of the outage")
        server.restart()  # a clean restart: Dovecot says BYE to the IDLE connection
        imap_mailbox.deliver(make_mail(subject="after the restart"))
        wait_until(lambda: count(engine, db.Incident) == 3, what="the mail after the restart")
    state_lines = [r.getMessage() for r in caplog.records if getattr(r, "state", None)]
    assert len(state_lines) == 4, state_lines  # down, back, down, back
    assert "mailbox unavailable" in state_lines[0] and "working again" in state_lines[1]
    assert int(state_lines[1].split("after ")[1].split()[0]) >= 4
    assert imap_mailbox.message_count() == 0 and imap_mailbox.message_count("Processed") == 3
    engine.dispose()


def processed(account: ImapAccount) -> int:
    return account.message_count("Processed") if "Processed" in account.folders() else 0


def test_implicit_tls_and_starttls_verify_the_server_against_the_configured_ca(
    sqlite_url, imap_mailbox, dovecot
):
    ready_engine(sqlite_url).dispose()
    ca = str(dovecot.ca_file)
    sources = {
        "tls": imap_source(imap_mailbox, security="tls", port=dovecot.tls_port, ca_file=ca),
        "starttls": imap_source(imap_mailbox, security="starttls", ca_file=ca),
        "untrusted": imap_source(imap_mailbox, security="tls", port=dovecot.tls_port),
    }
    imap_mailbox.deliver(make_mail(subject="over TLS"))
    results = {r.source: r for r in poll_once(make_settings(sqlite_url, sources), ENV, [])}
    assert results["tls"].ok and results["tls"].text.startswith("1 processed")
    assert results["starttls"].ok
    assert not results["untrusted"].ok
    assert "certificate verif" in results["untrusted"].text


def test_starttls_never_falls_back_to_plain_text(sqlite_url, legacy_mailbox):
    ready_engine(sqlite_url).dispose()
    source = imap_source(legacy_mailbox, security="starttls")  # this server has no TLS at all
    (result,) = poll_once(make_settings(sqlite_url, {"support": source}), ENV, [])
    assert not result.ok and "STARTTLS" in result.text


def test_xoauth2_with_a_token_from_a_file_or_a_command(sqlite_url, legacy_mailbox, tmp_path):
    ready_engine(sqlite_url).dispose()
    token_file = tmp_path / "token"
    token_file.write_text(xoauth2_token("support") + "\n")
    helper = [sys.executable, "-c", f"print({xoauth2_token('support')!r})"]
    bad_helper = [sys.executable, "-c", "import sys; sys.exit('no refresh token')"]
    base = {"auth": "xoauth2", "password_env": None}
    sources = {
        "file": imap_source(legacy_mailbox, **base, oauth2_token_file=str(token_file)),
        "command": imap_source(legacy_mailbox, **base, oauth2_token_command=helper),
        "expired": imap_source(legacy_mailbox, **base, oauth2_token_command=bad_helper),
    }
    legacy_mailbox.deliver(make_mail(subject="token login"))
    results = {r.source: r for r in poll_once(make_settings(sqlite_url, sources), {}, [])}
    assert results["file"].ok and results["file"].text.startswith("1 processed")
    assert results["command"].ok
    assert (
        not results["expired"].ok and "exited with 1: no refresh token" in results["expired"].text
    )


def test_secrets_never_reach_the_log_even_at_debug_level(sqlite_url, imap_mailbox, tmp_path):
    ready_engine(sqlite_url).dispose()
    config = tmp_path / "mailproc.toml"
    config.write_text(
        f'support_address = "support@example.com"\ndefault_service = "it"\n'
        f'database_url = "{sqlite_url}"\n[services.it]\n'
        f'[sources.support]\nkind = "imap"\nhost = "{imap_mailbox.host}"\n'
        f'port = {imap_mailbox.port}\nsecurity = "plain"\nusername = "support"\n'
        f'password_env = "MAILPROC_TEST_IMAP_PASSWORD"\n'
    )
    imap_mailbox.deliver(make_mail(subject="secret-free"))
    done = subprocess.run(
        [*MAILPROC, "--config", str(config), "--log-level", "DEBUG", "poll", "--once"],
        env={**ENV, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "support: 1 processed" in done.stdout
    assert "DEBUG" in done.stderr and "support-pass" not in done.stderr + done.stdout


def test_a_missing_password_variable_is_a_configuration_error(sqlite_url, imap_mailbox):
    settings = make_settings(sqlite_url, {"support": imap_source(imap_mailbox)})
    message = "sources.support: no password: set the environment variable MAILPROC_TEST_IMAP_PASS"
    with pytest.raises(ConfigError, match=message):
        poll_once(settings, {}, [])


def test_replies_in_one_pass_thread_onto_the_incident_of_the_same_pass(
    sqlite_url, imap_mailbox, imap
):
    engine = ready_engine(sqlite_url)
    first = make_mail(subject="Printer jammed")
    imap.append("INBOX", first)
    imap.append(
        "INBOX",
        make_mail(
            sender="Tina <tina@example.com>",
            subject="Re: Printer jammed [ASSIGN tina]",
            in_reply_to=message_id_of(first),
        ),
    )
    settings = make_settings(sqlite_url, {"support": imap_source(imap_mailbox, batch_size=1)})
    (result,) = poll_once(settings, ENV, [])
    assert result.text == "2 processed, 0 duplicate, 0 quarantined"
    assert get_incident(engine, 1).incident.assignee == "tina"
    engine.dispose()


def test_a_backlog_is_parsed_ahead_by_workers_and_applied_in_order_batch_by_batch(
    sqlite_url, imap_mailbox, imap, monkeypatch
):
    """As `ingest` of a folder: the workers parse, the Desk applies in the folder's order, so a
    reply in a later batch threads onto the report of an earlier one; nothing is lost."""
    engine = ready_engine(sqlite_url)
    reports = [make_mail(subject=f"Report {n}", sender=f"u{n}@example.org") for n in range(60)]
    replies = [
        make_mail(subject=f"Re: Report {n}", in_reply_to=message_id_of(reports[n]))
        for n in range(0, 60, 3)
    ]
    for raw in [*reports, GARBAGE, *replies]:
        imap.append("INBOX", raw)
    in_desk = []
    monkeypatch.setattr("mailproc.daemon.loop.default_jobs", lambda: 1)
    monkeypatch.setattr(
        "mailproc.desk.mail.parse_mail", lambda raw: in_desk.append(raw) or parse(raw)
    )
    source = imap_source(imap_mailbox, batch_size=25)
    (result,) = poll_once(make_settings(sqlite_url, {"support": source}), ENV, [])
    assert result.text == "80 processed, 0 duplicate, 1 quarantined"
    assert in_desk == []  # the workers parsed every mail, the unparseable one too
    incidents = list_incidents(engine)
    assert [i.title for i in incidents] == [f"Report {n}" for n in range(60)]
    for n in range(0, 60, 3):
        threaded = get_incident(engine, n + 1).message_ids
        assert message_id_of(replies[n // 3]) in threaded, f"reply to report {n} not threaded"
    assert messages(imap) == 0 and messages(imap, "Quarantine") == 1
    engine.dispose()


def test_one_daemon_serves_several_folders_each_for_its_service(sqlite_url, imap_mailbox, imap):
    engine = ready_engine(sqlite_url)
    for folder in ("Desk", "Network"):
        imap.create_folder(folder)
    sources = {
        "desk": imap_source(imap_mailbox, folder="Desk", service="general"),
        "network": imap_source(
            imap_mailbox,
            folder="Network",
            service="network",
            processed_folder="Network.Done",
            quarantine_folder="Network.Bad",
        ),
    }
    with running(make_settings(sqlite_url, sources)):
        imap.append("Desk", make_mail(subject="new laptop", to="support@example.com"))
        imap.append("Network", make_mail(subject="switch down", to="support@example.com"))
        wait_until(lambda: count(engine, db.Incident) == 2, what="both incidents")
        wait_until(lambda: messages(imap, "Network.Done") == 1, what="the network move")
    services = sorted((i.title, i.service) for i in list_incidents(engine))
    assert services == [("new laptop", "general"), ("switch down", "network")]
    assert messages(imap, "Processed") == 1
    engine.dispose()


def test_while_the_database_is_down_mail_stays_put_and_nothing_is_quarantined(
    pg_url, postgres_server, imap_mailbox, imap, caplog
):
    caplog.set_level(logging.INFO)
    engine = ready_engine(pg_url)
    name = pg_url.rsplit("/", 1)[1]
    settings = make_settings(pg_url, {"support": imap_source(imap_mailbox)})
    with running(settings) as daemon:
        imap.append("INBOX", make_mail(subject="before"))
        wait_until(lambda: count(engine, db.Incident) == 1, what="the first mail")
        engine.dispose()
        postgres_server.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        postgres_server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        imap.append("INBOX", make_mail(subject="during the outage"))
        wait_until(lambda: worker(daemon).state.attempts >= 3, what="failed attempts")
        assert worker(daemon).state.state == "database unavailable"
        assert messages(imap) == 1 and messages(imap, "Quarantine") == 0
        postgres_server.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')
        wait_until(lambda: messages(imap) == 0, what="the mail after the outage")
    assert [i.title for i in list_incidents(engine)] == ["before", "during the outage"]
    assert count(engine, db.Message) == 2 and messages(imap, "Quarantine") == 0
    states = [r.getMessage() for r in caplog.records if getattr(r, "state", None)]
    assert len(states) == 2 and "database unavailable" in states[0], states
    engine.dispose()


def test_idle_notices_mail_that_came_between_the_last_listing_and_the_idle(
    sqlite_url, imap_mailbox, imap
):
    """Dovecot announces such mail in the same packet as IDLE's continuation, where poll()
    on the socket cannot see it; it must not wait for the next IDLE timeout."""
    settings = make_settings(sqlite_url, {"support": imap_source(imap_mailbox, idle_seconds=600)})
    source = ImapSource("support", settings.sources["support"], ENV)  # type: ignore[arg-type]
    source.open(readonly=False)
    assert source.listing() == []
    imap.append("INBOX", make_mail(subject="slipped in"))
    wake = Wake()
    waiting = threading.Thread(target=source.wait, args=(wake,))
    waiting.start()
    waiting.join(10)
    returned = not waiting.is_alive()
    wake.set()
    waiting.join(10)
    assert returned, "IDLE missed the mail until its timeout"
    assert len(source.listing()) == 1
    source.close()
    wake.close()


def test_without_uidplus_only_mail_mailproc_settled_is_expunged(sqlite_url, ancient_mailbox):
    ready_engine(sqlite_url).dispose()
    client = ancient_mailbox.connect()
    client.append("INBOX", make_mail(subject="normal"))
    client.append("INBOX", make_mail(subject="deleted by a person"), flags=[DELETED])
    source = imap_source(ancient_mailbox, batch_size=1)
    (result,) = poll_once(make_settings(sqlite_url, {"support": source}), ENV, [])
    assert result.text == "2 processed, 0 duplicate, 0 quarantined"  # stored before removed
    assert (messages(client), messages(client, "Processed")) == (0, 1)

    # Seen mode: mail a person flagged \Deleted after mailproc saw it is theirs to expunge.
    client.append("INBOX", make_mail(subject="seen"))
    seen = imap_source(ancient_mailbox, settle="seen")
    poll_once(make_settings(sqlite_url, {"support": seen}), ENV, [])
    client.select_folder("INBOX")
    client.add_flags(client.search("ALL"), [DELETED])
    client.append("INBOX", GARBAGE)
    (result,) = poll_once(make_settings(sqlite_url, {"support": seen}), ENV, [])
    assert result.text == "0 processed, 0 duplicate, 1 quarantined"
    with_logout(client)  # LOGOUT expunges nothing
    inbox, quarantine = (ancient_mailbox.message_count(f) for f in ("INBOX", "Quarantine"))
    assert (inbox, quarantine) == (2, 1)  # the garbage is copied, but nothing was expunged
