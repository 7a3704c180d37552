"""A small mail world for end-to-end tests: people with real Dovecot mailboxes, the desk's
support mailbox polled over IMAP, its notices sent over SMTP to a real server and delivered
into the mailboxes of their recipients, read back over IMAP and answered as a mail client does.

Nothing is mocked: mail goes in through `poll --once`'s code path (mailproc.daemon.loop.poll_once),
out through the sender (mailproc.notify.sender.send_pending), and people read what Dovecot holds.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from sqlalchemy import Engine

from mailproc.config.settings import Settings
from mailproc.daemon.loop import poll_once
from mailproc.notify.sender import send_pending
from tests.support.daemon import ENV, imap_source, make_settings, ready_engine, with_logout
from tests.support.desk import FakeClock
from tests.support.servers import DovecotServer, SmtpCapture

#: Who reads mail in this world: address -> (Dovecot user, password).
PEOPLE = {
    "alice@example.org": ("reporter", "reporter-pass"),
    "tina@example.com": ("tina", "tina-pass"),
    "servicedesk@example.com": ("desk", "desk-pass"),
    "exchange-team@example.com": ("exchange", "exchange-pass"),
    "carol@example.org": ("carol", "carol-pass"),
    "sam@example.com": ("sam", "sam-pass"),
}


@dataclass
class World:
    dovecot: DovecotServer
    smtp: SmtpCapture
    settings: Settings
    engine: Engine
    clock: FakeClock
    undelivered: list[str] = field(default_factory=list)  # recipients with no mailbox here
    _sent: int = 0

    def write(self, raw: bytes) -> None:
        """A mail reaches the support mailbox (as the MTA would deliver it)."""
        self.dovecot.deliver("support", raw)

    def poll(self) -> str:
        """One `poll --once` pass over the support mailbox; its summary line."""
        (result,) = poll_once(self.settings, ENV, [], clock=self.clock)
        return str(result.text)

    def send(self) -> int:
        """Send the outbox over SMTP and deliver what the server accepted to the mailboxes."""
        send_pending(self.settings, self.engine, self.clock)
        new = self.smtp.messages[self._sent :]
        self._sent += len(new)
        for message in new:
            for rcpt in message.rcpt_tos:
                if rcpt in PEOPLE:
                    self.dovecot.deliver(PEOPLE[rcpt][0], message.data)
                else:
                    self.undelivered.append(rcpt)
        return len(new)

    def turn(self, raw: bytes, **later: float) -> str:
        """A mail arrives (after the clock moved on by `later`), is polled in, and the
        notices it caused go out; the poll's summary line."""
        self.clock.advance(**later)
        self.write(raw)
        summary = self.poll()
        self.send()
        return summary

    def inbox(self, address: str) -> list[EmailMessage]:
        """What the person finds in their INBOX over IMAP, oldest first."""
        user, password = PEOPLE[address]
        client = self.dovecot.connect(user, password)
        try:
            client.select_folder("INBOX", readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["RFC822"]) if uids else {}
        finally:
            with_logout(client)
        return [_parsed(fetched[uid][b"RFC822"]) for uid in sorted(fetched)]

    def last(self, address: str, subject_part: str = "") -> EmailMessage:
        found = [m for m in self.inbox(address) if subject_part in str(m["Subject"])]
        assert found, f"no mail with {subject_part!r} for {address}"
        return found[-1]


def _parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    return "" if body is None else str(body.get_content())


def reply(
    original: EmailMessage,
    sender: str,
    subject_extra: str = "",
    text: str = "",
    attachments: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    """What Thunderbird or Outlook sends: to the Reply-To, Re: subject (plus what the person
    typed into it), threading headers, the text above the quoted original."""
    answer = EmailMessage()
    answer["From"] = sender
    answer["To"] = original["Reply-To"]
    answer["Subject"] = f"Re: {original['Subject']} {subject_extra}".rstrip()
    answer["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
    answer["In-Reply-To"] = original["Message-ID"]
    answer["References"] = f"{original['References'] or ''} {original['Message-ID']}".strip()
    quoted = "\n".join(f"> {line}" for line in text_of(original).split("\n"))
    answer.set_content(f"{text}\n\nOn Mon, 23 Nov 2026, Service desk wrote:\n{quoted}\n")
    for filename, ctype, content in attachments:
        maintype, subtype = ctype.split("/")
        answer.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return answer.as_bytes()


@contextmanager
def mail_world(
    dovecot: DovecotServer, smtp: SmtpCapture, database_url: str, **config: Any
) -> Iterator[World]:
    """The embedded configuration on this database, the support mailbox and every person's
    mailbox emptied, SMTP to the capture; `config` overrides top-level configuration tables."""
    if not dovecot.running:
        dovecot.start()
    for user, password in [("support", "support-pass"), *PEOPLE.values()]:
        dovecot.add_user(user, password)
        dovecot.reset_user(user)
    support = dovecot.account("support")
    smtp_config = {"host": smtp.host, "port": smtp.port, "security": "none"}
    base = make_settings(database_url, {"support": imap_source(support)}, smtp_config)
    settings = base.model_copy(update=config) if config else base
    engine = ready_engine(database_url)
    try:
        yield World(dovecot, smtp, settings, engine, FakeClock())
    finally:
        engine.dispose()
