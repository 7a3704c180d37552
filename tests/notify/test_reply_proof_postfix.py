"""Reply proof through a real Postfix, with and without a recipient delimiter.

The whole round trip as a site runs it: a reporter's mail goes through Postfix into the
support Maildir that the test Dovecot serves; mailproc reads it over IMAP, opens an incident
and sends its notices through the same Postfix into the solver's Maildir; the solver's mail
client (as mutt does) answers the notice — to its Reply-To, with In-Reply-To and References —
with a command, through Postfix again; mailproc reads the reply and applies the command only
if the reply proves its sender (`command_authentication = "reply-token"`: no DKIM shortcut).

- `plus` needs the delimiter: without it Postfix refuses support+INC-1.<token>@ ("User
  unknown"), the failure sites without plus-addressing see.
- `plain` works either way: the proof comes back in the signed Message-ID the reply names,
  or, from a client that drops In-Reply-To and References, in the subject's signed tag.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

import pytest

from mailproc.config.settings import Settings, _embedded, settings_from_dict
from mailproc.daemon.loop import poll_once
from mailproc.desk.mail import utcnow
from mailproc.notify.sender import send_pending
from mailproc.store.queries import get_incident
from tests.support.daemon import ENV, imap_source, ready_engine, wait_until
from tests.support.fixtures import postfix_server, started
from tests.support.servers import DovecotServer, PostfixServer

REPORTER, SOLVER, SUPPORT = "reporter@example.org", "tina@example.com", "support@example.com"


@pytest.fixture(scope="module", params=["", "+"], ids=["no-delimiter", "plus-delimiter"])
def postfix(request: pytest.FixtureRequest, dovecot: DovecotServer) -> Iterator[PostfixServer]:
    with started(postfix_server(dovecot, request.param), "the Postfix test server") as server:
        yield server


@pytest.fixture
def mailboxes(dovecot: DovecotServer, imap_mailbox) -> DovecotServer:
    for user in ("reporter", "tina"):
        dovecot.reset_user(user)
    return dovecot


def settings_for(url: str, account, postfix: PostfixServer, mode: str) -> Settings:
    data = _embedded()
    data["services"]["general"] |= {"team": SOLVER, "first_line": SOLVER}
    data |= {
        "database_url": url,
        "sources": {"support": imap_source(account)},
        "smtp": {"host": postfix.host, "port": postfix.port, "security": "none"},
        "security": {"command_authentication": "reply-token"},
    }
    data["notifications"] = {"reply_address": mode}
    return settings_from_dict(data, "test configuration", ENV)


def through_postfix(postfix: PostfixServer, msg: EmailMessage, to: str) -> None:
    with smtplib.SMTP(postfix.host, postfix.port, timeout=30) as client:
        client.send_message(msg, to_addrs=[to])
    wait_until(postfix.queue_empty, timeout=30, what="Postfix delivered everything")


def inbox(dovecot: DovecotServer, user: str) -> list[EmailMessage]:
    """The user's mail as their client sees it, over IMAP."""
    client = dovecot.connect(user)
    try:
        client.select_folder("INBOX", readonly=True)
        data = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
        return [message_from_bytes(d[b"BODY[]"], policy=policy.default) for d in data.values()]
    finally:
        client.logout()


def report() -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = f"Rita Reporter <{REPORTER}>", SUPPORT
    msg["Subject"], msg["Message-ID"] = "The printer is on fire", make_msgid("r", "example.org")
    msg.set_content("Smoke on the third floor.")
    return msg


def answer(notice: EmailMessage, command: str, threaded: bool = True) -> EmailMessage:
    """What a mail client writes for "reply" to the notice."""
    msg = EmailMessage()
    msg["From"], msg["To"] = f"Tina <{SOLVER}>", notice["Reply-To"]
    msg["Subject"] = f"Re: {notice['Subject']} {command}"
    msg["Message-ID"] = make_msgid("t", "example.com")
    if threaded:
        msg["In-Reply-To"] = notice["Message-ID"]
        msg["References"] = notice["Message-ID"]
    quoted = "".join(f"> {line}\n" for line in notice.get_content().splitlines())
    msg.set_content(f"On it.\n\n{quoted}")
    return msg


def opened(settings: Settings, postfix: PostfixServer, dovecot) -> EmailMessage:
    """The reporter's mail in, incident 1 open, the solver's notice delivered to them."""
    through_postfix(postfix, report(), SUPPORT)
    (result,) = poll_once(settings, ENV, [])
    assert result.text == "1 processed, 0 duplicate, 0 quarantined"
    engine = ready_engine(settings.database_url)
    assert send_pending(settings, engine, utcnow) >= 2
    engine.dispose()
    wait_until(postfix.queue_empty, timeout=30, what="notices delivered")
    (notice,) = inbox(dovecot, "tina")
    return notice


def assignee_after_reply(settings: Settings) -> str | None:
    (result,) = poll_once(settings, ENV, [])
    assert result.text == "1 processed, 0 duplicate, 0 quarantined"
    engine = ready_engine(settings.database_url)
    incident = get_incident(engine, 1).incident
    engine.dispose()
    return incident.assignee


@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "headers-dropped"])
def test_plain_reply_address_proves_a_reply_with_or_without_a_delimiter(
    tmp_path: Path, postfix, mailboxes, imap_mailbox, threaded
):
    settings = settings_for(f"sqlite:///{tmp_path / 'db'}", imap_mailbox, postfix, "plain")
    ready_engine(settings.database_url).dispose()
    notice = opened(settings, postfix, mailboxes)
    assert notice["Reply-To"] == SUPPORT
    assert str(notice["Subject"]).startswith("[INC-1.")
    through_postfix(postfix, answer(notice, "[ASSIGN]", threaded), notice["Reply-To"])
    assert assignee_after_reply(settings) == "tina"


def test_plus_reply_address_needs_the_mail_servers_recipient_delimiter(
    tmp_path: Path, postfix, mailboxes, imap_mailbox
):
    settings = settings_for(f"sqlite:///{tmp_path / 'db'}", imap_mailbox, postfix, "plus")
    ready_engine(settings.database_url).dispose()
    notice = opened(settings, postfix, mailboxes)
    assert notice["Reply-To"].startswith("support+INC-1.")
    reply = answer(notice, "[ASSIGN]")
    if postfix.recipient_delimiter != "+":
        with pytest.raises(smtplib.SMTPRecipientsRefused, match="User unknown"):
            through_postfix(postfix, reply, notice["Reply-To"])
        return
    through_postfix(postfix, reply, notice["Reply-To"])
    assert assignee_after_reply(settings) == "tina"


def test_without_proof_the_command_is_not_applied(tmp_path: Path, postfix, mailboxes, imap_mailbox):
    """The control: the same reply, written fresh (no threading headers, no signed tag)."""
    settings = settings_for(f"sqlite:///{tmp_path / 'db'}", imap_mailbox, postfix, "plain")
    ready_engine(settings.database_url).dispose()
    notice = opened(settings, postfix, mailboxes)
    forged = answer(notice, "[ASSIGN]", threaded=False)
    forged.replace_header("Subject", "Re: [INC-1] The printer is on fire [ASSIGN]")
    through_postfix(postfix, forged, SUPPORT)
    assert assignee_after_reply(settings) is None
