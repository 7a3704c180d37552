"""The test infrastructure itself: real PostgreSQL, Dovecot and SMTP servers answer for real."""

from __future__ import annotations

import smtplib
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from email.message import EmailMessage
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from tests.support.servers import (
    DovecotServer,
    ImapAccount,
    PostgresServer,
    SmtpCapture,
    free_port,
)

ROOT = Path(__file__).resolve().parents[1]


def _mail(subject: str, to: str = "support@example.org", body: str = "Hello.\n") -> bytes:
    msg = EmailMessage()
    msg["From"] = "Reporter <reporter@example.org>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{time.monotonic_ns()}@test.example.org>"
    msg.set_content(body)
    return msg.as_bytes()


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_pg_url_is_a_fresh_database_psycopg(pg_url: str, postgres_server: PostgresServer) -> None:
    assert pg_url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/")
    dbname = pg_url.rsplit("/", 1)[1]
    with psycopg.connect(postgres_server.conninfo(dbname)) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, name text)")
        conn.execute("INSERT INTO t VALUES (1, 'one')")
        assert conn.execute("SELECT name FROM t").fetchall() == [("one",)]


def test_pg_url_with_sqlalchemy(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
            conn.execute(sa.text("CREATE TABLE incident (id serial PRIMARY KEY, title text)"))
            conn.execute(sa.text("INSERT INTO incident (title) VALUES ('printer on fire')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT title FROM incident")).scalars().all() == [
                "printer on fire"
            ]
    finally:
        engine.dispose()


def test_pg_databases_are_dropped_even_with_open_connections(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database("test_dropme")
    engine = sa.create_engine(url)
    conn = engine.connect()  # left open on purpose
    try:
        postgres_server.drop_database("test_dropme")
        names = postgres_server.execute("SELECT datname FROM pg_database")
        assert ("test_dropme",) not in names
    finally:
        conn.invalidate()
        engine.dispose()


def test_pg_server_is_fast_and_wide(postgres_server: PostgresServer) -> None:
    settings = dict(
        postgres_server.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'full_page_writes', 'max_connections', "
            "'listen_addresses')"
        )
    )
    assert settings == {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "max_connections": "200",
        "listen_addresses": "127.0.0.1",
    }


def test_database_url_yields_both_kinds(database_url: str, request: pytest.FixtureRequest) -> None:
    kind = request.node.callspec.params["database_url"]
    expected_prefix = {"sqlite": "sqlite:///", "postgresql": "postgresql+psycopg://"}[kind]
    assert database_url.startswith(expected_prefix)
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x integer)"))
            conn.execute(sa.text("INSERT INTO t VALUES (42)"))
            assert conn.execute(sa.text("SELECT x FROM t")).scalar_one() == 42
    finally:
        engine.dispose()


def test_a_durable_second_cluster_starts_and_cleans_up() -> None:
    with PostgresServer(durable=True, max_connections=20) as pg:
        root = pg.root
        assert root is not None and root.is_dir()
        assert not str(root).startswith("/root")
        assert pg.execute("SHOW fsync") == [("on",)]
        assert pg.execute("SHOW max_connections") == [("20",)]
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(pg.conninfo(), connect_timeout=2)


# --- Dovecot ------------------------------------------------------------------------------------


def test_imap_append_select_search_fetch(imap_mailbox: ImapAccount) -> None:
    raw = _mail("IMAP round trip")
    with IMAPClient(imap_mailbox.host, port=imap_mailbox.port, ssl=False, timeout=10) as client:
        client.login("support", "support-pass")
        caps = set(client.capabilities())
        assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= caps
        client.append("INBOX", raw)
        info = client.select_folder("INBOX")
        assert info[b"EXISTS"] == 1
        uids = client.search(["SUBJECT", "IMAP round trip"])
        assert len(uids) == 1
        fetched = client.fetch(uids, ["RFC822"])
        assert fetched[uids[0]][b"RFC822"] == raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        client.logout()
    assert imap_mailbox.message_count() == 1


def test_imap_mailbox_starts_empty(imap_mailbox: ImapAccount) -> None:
    assert imap_mailbox.message_count() == 0
    assert imap_mailbox.folders() == ["INBOX"]
    # leave mail and folders behind for the next test's fixture to clear
    imap_mailbox.deliver(_mail("left behind"))
    imap_mailbox.deliver(_mail("filed"), folder="Archive.2024")
    client = imap_mailbox.connect()
    try:
        assert client.folder_exists("Archive.2024")
        assert client.folder_status("Archive.2024", ["MESSAGES"])[b"MESSAGES"] == 1
        assert client.namespace().personal[0][1] == "."
    finally:
        client.logout()


def test_imap_mailbox_is_emptied_again(imap_mailbox: ImapAccount) -> None:
    assert imap_mailbox.message_count() == 0
    assert imap_mailbox.folders() == ["INBOX"]


def test_other_users_and_wrong_password(dovecot: DovecotServer) -> None:
    for user in ("reporter", "tina"):
        client = dovecot.connect(user)
        client.logout()
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    with pytest.raises(LoginError):
        client.login("support", "wrong")
    client.shutdown()
    # no auth penalty: the next login from 127.0.0.1 is immediate
    started = time.monotonic()
    dovecot.connect("support").logout()
    assert time.monotonic() - started < 1.5


def test_add_user_is_seen_at_once(dovecot: DovecotServer) -> None:
    account = dovecot.add_user("late-comer", "late-pass")
    client = account.connect()
    try:
        client.append("INBOX", _mail("hello late comer"))
        assert client.select_folder("INBOX")[b"EXISTS"] == 1
    finally:
        client.logout()


def test_many_concurrent_connections(imap_mailbox: ImapAccount) -> None:
    clients = [imap_mailbox.connect() for _ in range(12)]
    try:
        for client in clients:
            client.select_folder("INBOX", readonly=True)
    finally:
        for client in clients:
            client.logout()


def test_restart_keeps_mail_and_port(imap_mailbox: ImapAccount) -> None:
    server = imap_mailbox.server
    port = server.port
    raw = _mail("survives a restart")
    client = imap_mailbox.connect()
    client.append("INBOX", raw)
    client.select_folder("INBOX")

    server.restart()

    assert server.port == port and server.running
    with pytest.raises((OSError, IMAPClient.AbortError, IMAPClient.Error)):
        client.noop()
    client = imap_mailbox.connect()
    try:
        client.select_folder("INBOX")
        uids = client.search(["SUBJECT", "survives a restart"])
        assert len(uids) == 1
    finally:
        client.logout()


def test_kill_then_start(imap_mailbox: ImapAccount) -> None:
    server = imap_mailbox.server
    imap_mailbox.deliver(_mail("before the crash"))
    server.kill()
    assert not server.running
    with pytest.raises(OSError), socket.create_connection((server.host, server.port), 2):
        pass
    server.start()
    assert imap_mailbox.message_count() == 1


def test_imaps_needs_the_test_ca(dovecot: DovecotServer) -> None:
    assert dovecot.tls_port is not None and dovecot.ca_file is not None
    # The default trust store does not know the test CA.
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            dovecot.host,
            port=dovecot.tls_port,
            ssl=True,
            ssl_context=ssl.create_default_context(),
            timeout=10,
        )
    # With the generated CA file, verification (including the host name) succeeds.
    context = ssl.create_default_context(cafile=str(dovecot.ca_file))
    with IMAPClient(
        "localhost", port=dovecot.tls_port, ssl=True, ssl_context=context, timeout=10
    ) as client:
        client.login("tina", "tina-pass")
        assert b"IDLE" in client.capabilities()
        client.logout()


def test_dovecot_logs_to_its_own_file(dovecot: DovecotServer) -> None:
    dovecot.connect("reporter").logout()
    assert "user=<reporter>" in dovecot.log_path.read_text()
    assert not str(dovecot.log_path).startswith("/root")


# --- SMTP ---------------------------------------------------------------------------------------


def test_smtp_capture_receives_and_refuses(smtp_server: SmtpCapture) -> None:
    smtp_server.reject_recipient("bounce@example.org", 550)
    raw = _mail("to two people", to="tina@example.org, bounce@example.org")
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        refused = client.sendmail(
            "support@example.org", ["tina@example.org", "bounce@example.org"], raw
        )
    assert set(refused) == {"bounce@example.org"}
    assert refused["bounce@example.org"][0] == 550

    (message,) = smtp_server.wait_for(1)
    assert message.mail_from == "support@example.org"
    assert message.rcpt_tos == ("tina@example.org",)
    assert message.subject == "to two people"
    assert message.message["To"] == "tina@example.org, bounce@example.org"
    assert [r.rcpt_to for r in smtp_server.refused] == ["bounce@example.org"]

    with (
        smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client,
        pytest.raises(smtplib.SMTPRecipientsRefused),
    ):
        client.sendmail("support@example.org", ["bounce@example.org"], raw)


def test_smtp_capture_temporary_failures(smtp_server: SmtpCapture) -> None:
    smtp_server.fail_next(2)
    raw = _mail("retry me")
    for _ in range(2):
        with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
            with pytest.raises(smtplib.SMTPDataError) as info:
                client.sendmail("support@example.org", ["tina@example.org"], raw)
            assert info.value.smtp_code == 451
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        assert client.sendmail("support@example.org", ["tina@example.org"], raw) == {}
    assert len(smtp_server.wait_for(1)) == 1

    smtp_server.fail_next(1, code=421, text="4.3.2 Shutting down")
    client = smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10)
    with pytest.raises((smtplib.SMTPDataError, smtplib.SMTPServerDisconnected)):
        client.sendmail("support@example.org", ["tina@example.org"], raw)
    client.close()
    assert len(smtp_server.messages) == 1


def test_smtp_capture_auth() -> None:
    with SmtpCapture(username="mailer", password="s3cret") as server:
        with (
            smtplib.SMTP(server.host, server.port, timeout=10) as client,
            pytest.raises(smtplib.SMTPSenderRefused),  # AUTH is required
        ):
            client.sendmail("support@example.org", ["tina@example.org"], _mail("no auth"))
        with (
            smtplib.SMTP(server.host, server.port, timeout=10) as client,
            pytest.raises(smtplib.SMTPAuthenticationError),
        ):
            client.login("mailer", "wrong")
        for mechanism in ("PLAIN", "LOGIN"):
            with smtplib.SMTP(server.host, server.port, timeout=10) as client:
                client.ehlo()
                client.user, client.password = "mailer", "s3cret"
                client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
                client.sendmail("support@example.org", ["tina@example.org"], _mail(mechanism))
        messages = server.wait_for(2)
        assert [m.auth_login for m in messages] == ["mailer", "mailer"]
        assert server.auth_failures >= 1  # smtplib.login tries every mechanism


def test_wait_for_times_out_clearly(smtp_server: SmtpCapture) -> None:
    with pytest.raises(TimeoutError, match="expected 1 message"):
        smtp_server.wait_for(1, timeout=0.2)


# --- cleanup ------------------------------------------------------------------------------------


def test_free_port_is_free() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_servers_are_reaped_when_their_owner_dies(tmp_path: Path) -> None:
    """A process that starts servers and dies by SIGKILL leaves nothing running or on disk."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.support.servers import DovecotServer, PostgresServer
        pg = PostgresServer().start()
        dc = DovecotServer({{"u": "p"}}).start()
        print(pg.root, pg.port, dc.root, dc.port, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr
    pg_root, pg_port, dc_root, dc_port = proc.stdout.split()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not Path(pg_root).exists() and not Path(dc_root).exists():
            break
        time.sleep(0.1)
    assert not Path(pg_root).exists()
    assert not Path(dc_root).exists()
    for port in (int(pg_port), int(dc_port)):
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), 1):
            pass
