"""The outbox sender against real SMTP servers: retries, refusals, TLS, login, claims.

Storage-touching, so on SQLite and PostgreSQL; the servers are aiosmtpd in this process.
"""

from __future__ import annotations

import ssl
import subprocess
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.cli.report import incident_detail
from mailproc.config.settings import ConfigError, Settings, SmtpConfig, demo_settings
from mailproc.desk.mail import Desk
from mailproc.inbound.parse import parse_mail
from mailproc.notify.sender import send_pending, smtp_password
from mailproc.store import db
from mailproc.store.db import make_engine
from mailproc.store.queries import get_incident
from mailproc.store.schema import upgrade
from tests.support.desk import FakeClock
from tests.support.mailfactory import make_mail
from tests.support.servers import SmtpCapture, free_port


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return demo_settings(environ={"MAILPROC_SECRET": "t"}).model_copy(
        update={"database_url": database_url}
    )


@pytest.fixture
def engine(settings):
    engine = make_engine(settings.database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def desk(settings, engine, clock) -> Desk:
    return Desk(settings, engine, clock)


def smtp(settings: Settings, server: SmtpCapture, **kw: Any) -> Settings:
    config = SmtpConfig(host=server.host, port=server.port, security="none", **kw)
    return settings.model_copy(update={"smtp": config})


def rows(engine) -> list[db.Outbox]:
    with Session(engine) as session:
        return list(session.scalars(select(db.Outbox).order_by(db.Outbox.id)))


def open_incidents(desk: Desk, count: int) -> None:
    """Each new incident queues two mails: the acknowledgment and the first-line alert."""
    for n in range(count):
        desk.handle(make_mail(subject=f"problem {n}", sender=f"user{n}@example.org"))


class SessionCapture(SmtpCapture):
    """Also records which connection each message came over."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.peers: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def test_one_connection_serves_the_whole_outbox(settings, engine, desk, clock):
    open_incidents(desk, 3)
    with SessionCapture() as server:
        config = smtp(settings, server, batch_size=2)
        assert send_pending(config, engine, clock) == 6
    assert len(server.messages) == 6 and len(set(server.peers)) == 1
    assert {r.status for r in rows(engine)} == {"sent"}
    assert all(r.sent_at == clock.now and r.claim_token is None for r in rows(engine))
    assert send_pending(config, engine, clock) == 0


def test_an_unreachable_server_defers_everything_and_nothing_is_lost(settings, engine, desk, clock):
    open_incidents(desk, 1)
    down = SmtpCapture(port=free_port())
    config = smtp(settings, down)
    assert send_pending(config, engine, clock) == 0
    assert [(r.status, r.attempts) for r in rows(engine)] == [("pending", 1), ("pending", 1)]
    assert "unavailable" in (rows(engine)[0].error or "")
    assert rows(engine)[0].next_attempt_at == clock.now + timedelta(seconds=60)
    with down:
        assert send_pending(config, engine, clock) == 0  # not due yet: backoff
        clock.advance(seconds=60)
        assert send_pending(config, engine, clock) == 2
    assert len(down.messages) == 2


def test_a_temporary_refusal_is_retried_with_a_doubling_backoff(
    settings, engine, desk, clock, smtp_server
):
    desk.handle(make_mail(headers={"X-Auto-Response-Suppress": "All"}))  # the alert only
    config = smtp(settings, smtp_server)
    smtp_server.fail_next(2)
    send_pending(config, engine, clock)
    (row,) = rows(engine)
    assert (row.status, row.attempts, row.error) == (
        "pending",
        1,
        "451 4.3.0 Temporary failure, try again later",
    )
    clock.advance(seconds=60)
    send_pending(config, engine, clock)
    assert rows(engine)[0].next_attempt_at == clock.now + timedelta(seconds=120)
    clock.advance(seconds=120)
    assert send_pending(config, engine, clock) == 1
    assert rows(engine)[0].status == "sent" and len(smtp_server.messages) == 1


def test_a_server_closing_the_connection_leaves_the_rest_for_the_next_run(
    settings, engine, desk, clock, smtp_server
):
    open_incidents(desk, 2)
    smtp_server.fail_next(1, code=421, text="4.3.2 Shutting down")
    config = smtp(settings, smtp_server)
    send_pending(config, engine, clock)
    assert [(r.status, r.attempts) for r in rows(engine)] == [("pending", 1)] + [("pending", 0)] * 3
    assert send_pending(config, engine, clock) == 3
    clock.advance(minutes=1)
    assert send_pending(config, engine, clock) == 1


def test_a_permanent_refusal_fails_that_recipient_with_the_servers_reason(
    settings, engine, desk, clock, smtp_server
):
    smtp_server.reject_recipient("alice@example.org", "550 5.1.1 <alice@example.org>: no such user")
    desk.handle(make_mail())
    assert send_pending(smtp(settings, smtp_server), engine, clock) == 1
    fates = {(r.recipient, r.status, r.error) for r in rows(engine)}
    assert fates == {
        ("alice@example.org", "failed", "550 5.1.1 <alice@example.org>: no such user"),
        ("servicedesk@example.com", "sent", None),
    }
    shown = incident_detail(get_incident(engine, 1))
    assert (
        "acknowledgment → alice@example.org: failed: 550 5.1.1 <alice@example.org>: no such user"
        in shown
    )
    clock.advance(days=1)
    assert send_pending(smtp(settings, smtp_server), engine, clock) == 0


def test_two_senders_never_send_one_row_twice(settings, engine, desk, clock, smtp_server):
    open_incidents(desk, 10)
    config = smtp(settings, smtp_server, batch_size=3)
    counts: list[int] = []
    threads = [
        threading.Thread(target=lambda: counts.append(send_pending(config, engine, clock)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(counts) == 20
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert len(ids) == 20 and len(set(ids)) == 20


def test_login_uses_the_password_from_the_environment(settings, engine, desk, clock):
    desk.handle(make_mail())
    with SmtpCapture(username="mailer", password="s3cret") as server:
        config = smtp(settings, server, username="mailer")
        env = {"MAILPROC_SMTP_PASSWORD": "s3cret"}
        assert send_pending(config, engine, clock, env) == 2
    assert {m.auth_login for m in server.messages} == {"mailer"}


def test_a_password_is_required_and_never_sent_in_clear_to_another_host():
    config = demo_settings(environ={"MAILPROC_SECRET": "t"}).model_copy(
        update={"smtp": SmtpConfig(host="mail.example.com", security="none", username="u")}
    )
    with pytest.raises(
        ConfigError,
        match="no password: set the environment variable MAILPROC_SMTP_PASSWORD",
    ):
        smtp_password(config, {})
    with pytest.raises(ConfigError, match="refusing to send the password unencrypted"):
        smtp_password(config, {"MAILPROC_SMTP_PASSWORD": "pw"})
    tls = config.model_copy(update={"smtp": config.smtp.model_copy(update={"security": "tls"})})
    assert smtp_password(tls, {"MAILPROC_SMTP_PASSWORD": "pw"}) == "pw"


# --- TLS ------------------------------------------------------------------------------------


class StartTlsCapture(SmtpCapture):
    """An SMTP capture that requires STARTTLS with the given certificate."""

    def __init__(self, cert: Path, key: Path) -> None:
        super().__init__()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)

    def start(self) -> StartTlsCapture:
        from aiosmtpd.controller import Controller

        self._controller = Controller(
            self,
            hostname=self.host,
            port=self.port,
            tls_context=self.context,
            require_starttls=True,
        )
        self._controller.start()
        return self


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt"),
            *("ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_starttls_verifies_the_certificate_by_default(settings, engine, desk, clock, certificate):
    desk.handle(make_mail(headers={"X-Auto-Response-Suppress": "All"}))
    cert, key = certificate
    with StartTlsCapture(cert, key) as server:
        default = SmtpConfig(host=server.host, port=server.port)
        assert default.security == "starttls"
        assert send_pending(settings.model_copy(update={"smtp": default}), engine, clock) == 0
        assert "CERTIFICATE_VERIFY_FAILED" in (rows(engine)[0].error or "")
        trusted = default.model_copy(update={"ca_file": cert})
        clock.advance(minutes=1)
        assert send_pending(settings.model_copy(update={"smtp": trusted}), engine, clock) == 1
    assert len(server.messages) == 1


def test_mail_queued_before_the_letter_migration_is_still_sent(settings, clock, smtp_server):
    """Rows queued as composed bytes (revision 0004) become letters on upgrade and go out
    unchanged; a downgrade turns them back into bytes."""
    from alembic import command
    from sqlalchemy import text

    from mailproc.notify.letter import AUTO_REPLIED, Letter, compose
    from mailproc.store.schema import _config

    engine = make_engine(settings.database_url)
    letter = Letter(
        subject="[INC-1] Wir haben Ihre Meldung erhalten",
        text="Grüße\n",
        html="<p>Grüße</p>",
        from_name="Service Desk",
        from_address="support@example.com",
        to_name="Jiří Novák",
        to_address="jiri@example.org",
        reply_to="support@example.com",
        message_id="mp1.1.x.y.z@example.com",
        in_reply_to="first@example.org",
        references=("first@example.org",),
        auto_submitted=AUTO_REPLIED,
        date=clock.now,
    )
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        naive = clock.now.replace(tzinfo=None)
        connection.execute(
            text(
                "INSERT INTO incidents (id, service, status, priority, title, reporter, "
                "reporter_name, created_at, updated_at) VALUES "
                "(1, 'email', 'New', 'P2', 'x', 'jiri@example.org', '', :at, :at)"
            ),
            {"at": naive},
        )
        connection.execute(
            text(
                "INSERT INTO outbox (incident_id, kind, recipient, envelope_from, message_id, "
                "subject, raw, status, attempts, created_at, next_attempt_at) VALUES (1, "
                "'acknowledgment', 'jiri@example.org', 'support@example.com', :mid, :subject, "
                ":raw, 'pending', 0, :at, :at)"
            ),
            {
                "mid": letter.message_id,
                "subject": letter.subject,
                "raw": compose(letter),
                "at": naive,
            },
        )
        command.upgrade(config, "head")
    assert send_pending(smtp(settings, smtp_server), engine, clock) == 1
    (sent,) = smtp_server.messages
    assert sent.message["Message-ID"] == f"<{letter.message_id}>"
    assert sent.subject == letter.subject
    assert sent.message.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Grüße\n"
    assert sent.message["To"].addresses[0].display_name == "Jiří Novák"
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0004")
        raw = connection.execute(text("SELECT raw FROM outbox")).scalar()
    assert f"<{letter.message_id}>".encode() in raw
    engine.dispose()


def test_only_the_leases_of_gone_processes_of_this_machine_are_taken_back(
    settings, engine, desk, clock
):
    from mailproc.notify.sender import claim, take_back
    from mailproc.runtime import holder

    open_incidents(desk, 2)  # four rows
    here = holder.this_process()
    child = subprocess.Popen(["true"])
    child.wait()
    dead = holder.Holder(here.host, here.boot, child.pid, "1")
    elsewhere = holder.Holder("another-host", "", child.pid, "1")
    config = settings.model_copy(update={"smtp": SmtpConfig(batch_size=1)})
    for who in (here, dead, elsewhere, holder.this_process()):
        assert len(claim(engine, config, clock.now, who.host[:8], who)) == 1
    assert take_back(engine, clock.now, here) == 1  # the dead child's; alive or afar: kept
    assert [r.claimed_by for r in rows(engine)].count(None) == 1


def test_an_internationalised_address_is_answered_over_smtputf8(settings, engine, desk, clock):
    desk.handle(make_mail(sender="Jörg <jörg@exämple.de>", subject="Drucker kaputt", smtputf8=True))
    with SmtpCapture() as server:
        assert send_pending(smtp(settings, server), engine, clock) == 2
        (ack,) = [m for m in server.messages if m.rcpt_tos == ("jörg@xn--exmple-cua.de",)]
    assert [a.email for a in parse_mail(ack.data).to] == ["jörg@xn--exmple-cua.de"]
    assert ack.mail_from.isascii()


def test_without_smtputf8_an_internationalised_address_fails_with_a_clear_reason(
    settings, engine, desk, clock
):
    desk.handle(make_mail(sender="Jörg <jörg@exämple.de>", subject="Drucker kaputt", smtputf8=True))
    desk.handle(make_mail(sender="Jorg <jorg@exämple.de>", subject="Drucker kaputt", smtputf8=True))
    with SmtpCapture(smtputf8=False) as server:
        send_pending(smtp(settings, server), engine, clock)
        delivered = {m.rcpt_tos[0] for m in server.messages}
    assert "jorg@xn--exmple-cua.de" in delivered  # an ASCII name: the domain goes as IDNA
    (failed,) = [r for r in rows(engine) if r.recipient == "jörg@exämple.de"]
    assert failed.status == "failed"
    assert failed.error == (
        "the SMTP server does not offer SMTPUTF8: jörg@exämple.de is an internationalised "
        "address (RFC 6531)"
    )
