"""Hostile mail through the real Dovecot and `poll --once`: every mail settled, none blocking.

The hand-made hostile suite (tests/hostile.py), each one APPENDed between two good mails, plus
an auto-reply and a bounce: one pass leaves INBOX empty, every good mail an incident, every
hostile one applied or in Quarantine with its reason stored, and the automatic mail in a
folder of its own.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.config.safety import LimitsConfig
from mailproc.daemon.loop import poll_once
from mailproc.desk.mail import Desk
from mailproc.store import db
from mailproc.store.queries import list_incidents
from tests.support.bounces import dsn, vacation_reply
from tests.support.daemon import ENV, imap_source, make_settings, messages, ready_engine
from tests.support.hostile import CASES, SIZE_LIMIT
from tests.support.mailfactory import make_mail


def settings_for(url, account, **source):
    settings = make_settings(url, {"support": imap_source(account, **source)})
    limits = LimitsConfig(max_message_bytes=SIZE_LIMIT)
    return settings.model_copy(update={"limits": limits})


def test_a_batch_of_hostile_mail_between_good_mail_is_settled_in_one_pass(
    database_url, imap_mailbox, imap
):
    engine = ready_engine(database_url)
    good = 0
    hostile = [c for c in CASES if c.raw]  # an IMAP message cannot be empty
    automatic = [
        vacation_reply("Bob <bob@example.org>", "whatever@example.org", "hello"),
        dsn("mp1.9.aaaaaaaa.x.aaaaaaaaaaaaaaaa@example.com", "bob@example.org"),
    ]
    for case in [*hostile, *automatic]:
        good += 1
        imap.append("INBOX", make_mail(subject=f"good {good}", sender=f"u{good}@example.org"))
        imap.append("INBOX", case if isinstance(case, bytes) else case.raw)
    imap.append("INBOX", make_mail(subject="good last"))
    settings = settings_for(database_url, imap_mailbox, automatic_folder="Automatic")
    (result,) = poll_once(settings, ENV, [])
    assert result.ok, result.text
    quarantined = sum(c.outcome == "quarantined" for c in hostile)
    total = 2 * len(hostile) + 2 * len(automatic) + 1
    assert result.text == f"{total - quarantined} processed, 0 duplicate, {quarantined} quarantined"
    assert messages(imap) == 0  # nothing left behind, nothing stuck
    assert messages(imap, "Quarantine") == quarantined
    assert messages(imap, "Automatic") == len(automatic)
    assert messages(imap, "Processed") == total - quarantined - len(automatic)
    titles = {i.title for i in list_incidents(engine)}
    assert {f"good {n}" for n in range(1, good + 1)} | {"good last"} <= titles
    with Session(engine) as session:
        rows = session.execute(select(db.Message.outcome, db.Message.reason)).all()
    assert len(rows) == total
    assert all(reason for outcome, reason in rows if outcome == "quarantined")
    assert sum(outcome == "automatic" for outcome, _ in rows) == len(automatic)
    engine.dispose()


def test_a_mail_that_cannot_even_be_quarantined_goes_to_the_quarantine_folder(
    sqlite_url, imap_mailbox, imap, monkeypatch
):
    """The last line of defence: the database takes nothing for this one mail (a bug), so it
    is kept on the server, in Quarantine, and the mails behind it go on."""
    engine = ready_engine(sqlite_url)
    real = Desk._apply

    def broken(self, session, mail, origin, now):
        if mail.subject == "poison":
            raise RuntimeError("bug")
        return real(self, session, mail, origin, now)

    def no_quarantine(self, *args, **kw):
        raise RuntimeError("quarantine broken too")

    monkeypatch.setattr(Desk, "_apply", broken)
    monkeypatch.setattr(Desk, "_quarantine", no_quarantine)
    for subject in ("before", "poison", "after"):
        imap.append("INBOX", make_mail(subject=subject))
    (result,) = poll_once(settings_for(sqlite_url, imap_mailbox), ENV, [])
    assert result.text == "2 processed, 0 duplicate, 1 quarantined"
    assert (messages(imap), messages(imap, "Quarantine"), messages(imap, "Processed")) == (0, 1, 2)
    assert [i.title for i in list_incidents(engine)] == ["before", "after"]
    engine.dispose()
