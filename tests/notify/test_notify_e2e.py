"""End to end: the acknowledgment reaches the reporter's IMAP mailbox, and the reporter's reply,
written from it as a mail client writes replies, threads back onto the incident as a comment."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from email.utils import make_msgid

from mailproc.config.settings import SmtpConfig, demo_settings
from mailproc.desk.mail import Desk
from mailproc.notify.sender import send_pending
from mailproc.store.db import make_engine
from mailproc.store.queries import get_incident
from mailproc.store.schema import upgrade
from tests.support.desk import FakeClock
from tests.support.mailfactory import make_mail


def client_reply(original: email.message.EmailMessage, text: str) -> bytes:
    """What Thunderbird or Outlook would send: Re: subject, threading headers, quoted text."""
    reply = EmailMessage()
    reply["From"] = "Alice Novák <alice@example.org>"
    reply["To"] = original["Reply-To"]
    reply["Subject"] = f"Re: {original['Subject']}"
    reply["Message-ID"] = make_msgid(domain="example.org")
    reply["In-Reply-To"] = original["Message-ID"]
    reply["References"] = f"{original['References']} {original['Message-ID']}"
    quoted = "\n".join(
        f"> {line}" for line in original.get_body(("plain",)).get_content().split("\n")
    )
    reply.set_content(f"{text}\n\nOn Mon, 23 Nov 2026 at 09:00, Service desk wrote:\n{quoted}\n")
    return reply.as_bytes()


def test_the_acknowledgment_is_delivered_read_and_answered(dovecot, smtp_server, database_url):
    clock = FakeClock()
    settings = demo_settings(environ={"MAILPROC_SECRET": "e2e secret"}).model_copy(
        update={
            "database_url": database_url,
            "smtp": SmtpConfig(host=smtp_server.host, port=smtp_server.port, security="none"),
        }
    )
    engine = make_engine(database_url)
    upgrade(engine)
    desk = Desk(settings, engine, clock)
    number = desk.handle(make_mail(sender="Alice Novák <alice@example.org>")).incident
    assert send_pending(settings, engine, clock) == 2
    (ack,) = [m for m in smtp_server.messages if m.rcpt_tos == ("alice@example.org",)]

    if not dovecot.running:  # an earlier test may have stopped the session's server
        dovecot.start()
    dovecot.reset_user("reporter")
    with dovecot.connect("reporter") as mta:  # acting as the MTA that delivers it
        mta.append("INBOX", ack.data)
    with dovecot.connect("reporter") as reader:
        reader.select_folder("INBOX", readonly=True)
        (uid,) = reader.search("ALL")
        fetched = reader.fetch([uid], ["RFC822"])[uid][b"RFC822"]
    received = email.message_from_bytes(fetched, policy=email.policy.default)
    assert isinstance(received, EmailMessage)
    assert received["Subject"].startswith(f"[INC-{number}] We received your report")

    clock.advance(minutes=30)
    outcome = desk.handle(client_reply(received, "It works again after the restart."))
    assert outcome.summary == f"comment on INC-{number}"
    comment = get_incident(engine, number).events[-1]
    assert (comment.kind, comment.detail["text"]) == (
        "comment",
        "It works again after the restart.",
    )
    engine.dispose()
