"""Replies delivered before their reports, through a real Postfix: one incident per thread.

Each reporter's follow-up goes through Postfix into the support Maildir first, and mailproc
reads them over IMAP from the test Dovecot (each waits for the mail it answers); then the
reports come, in another pass, and each opens its incident with its follow-up on it.
"""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy

from mailproc.daemon.loop import poll_once
from mailproc.store.queries import get_incident, list_incidents
from tests.support.daemon import ENV, imap_source, make_settings, messages, ready_engine, wait_until
from tests.support.mailfactory import make_mail, message_id_of

THREADS = 6


def deliver(postfix, raws: list[bytes]) -> None:
    with smtplib.SMTP(postfix.host, postfix.port, timeout=30) as client:
        for raw in raws:
            msg = message_from_bytes(raw, policy=policy.SMTP)
            client.send_message(msg, to_addrs=["support@example.com"])
    wait_until(postfix.queue_empty, timeout=30, what="Postfix delivered everything")


def test_follow_ups_that_overtake_their_reports_still_make_one_incident_per_thread(
    database_url, postfix, imap_mailbox, imap
):
    reports, replies = [], []
    for n in range(THREADS):
        sender = f"User {n} <user{n}@example.org>"
        report = make_mail(subject=f"disk {n} full", sender=sender, to="support@example.com")
        reports.append(report)
        replies.append(
            make_mail(
                subject=f"Re: disk {n} full",
                sender=sender,
                to="support@example.com",
                body=f"Still full, {n}.",
                in_reply_to=message_id_of(report),
                references=[message_id_of(report)],
                authenticated=True,  # the border's verdict: proven replies are comments
            )
        )
    engine = ready_engine(database_url)
    settings = make_settings(database_url, {"support": imap_source(imap_mailbox)})
    deliver(postfix, replies)
    (first,) = poll_once(settings, ENV, [])
    assert first.text == f"{THREADS} processed, 0 duplicate, 0 quarantined"
    assert list_incidents(engine) == []  # every follow-up waits for its report
    deliver(postfix, reports)
    (second,) = poll_once(settings, ENV, [])
    assert second.text == f"{THREADS} processed, 0 duplicate, 0 quarantined"
    incidents = list_incidents(engine)
    assert sorted(i.title for i in incidents) == sorted(f"disk {n} full" for n in range(THREADS))
    for incident in incidents:
        detail = get_incident(engine, incident.number)
        n = incident.title.split()[1]
        assert [e.detail.get("text") for e in detail.events if e.kind == "comment"] == [
            f"Still full, {n}."
        ]
    assert messages(imap) == 0
    engine.dispose()
