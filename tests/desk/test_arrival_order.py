"""Threading does not depend on arrival order (mailproc.desk.waiting).

A reply that comes before the mail it answers waits for it; the parent, when it comes, opens
the incident and the reply joins it right after. A parent that comes after the wait ran out
still joins the incident its reply opened.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.desk.mail import Origin
from mailproc.store import db
from mailproc.store.queries import get_incident, list_incidents
from tests.support.mailfactory import make_mail, message_id_of

REPORTER = "Alice <alice@example.org>"


def thread(n: int = 1) -> tuple[bytes, bytes]:
    report = make_mail(subject=f"printer {n} broken", sender=REPORTER)
    reply = make_mail(
        subject=f"Re: printer {n} broken",
        sender=REPORTER,
        body="It smokes now.",
        in_reply_to=message_id_of(report),
        references=[message_id_of(report)],
        authenticated=True,  # the border's verdict: a proven reply is a comment
    )
    return report, reply


def outcomes(engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(db.Message.outcome).order_by(db.Message.id)))


def test_a_reply_before_its_report_waits_and_joins_the_incident_the_report_opens(desk, engine):
    report, reply = thread()
    waiting = desk.handle(reply)
    assert waiting.incident is None and waiting.summary.startswith("waiting up to 60s")
    opened = desk.handle(report)
    assert opened.summary.endswith("1 waiting reply applied")
    (incident,) = list_incidents(engine)
    assert incident.title == "printer 1 broken"
    events = [e.kind for e in get_incident(engine, incident.number).events]
    assert events[-1] == "comment"
    assert outcomes(engine) == ["processed", "processed"]


def test_a_reply_whose_parent_never_comes_opens_its_own_incident_when_the_wait_ends(
    desk, engine, clock
):
    report, reply = thread()
    desk.handle(reply)
    clock.advance(seconds=59)
    assert desk.release_due() == 0
    clock.advance(seconds=2)
    assert desk.release_due() == 1
    (incident,) = list_incidents(engine)
    assert get_incident(engine, incident.number).events[0].detail["text"] == "It smokes now."
    late = desk.handle(report)  # later still: it joins the incident its reply opened
    assert late.incident == incident.number
    assert len(list_incidents(engine)) == 1


def test_within_one_group_commit_replies_first_still_make_one_incident_per_thread(desk, engine):
    threads = [thread(n) for n in range(5)]
    with desk.batch() as handle:
        for _report, reply in threads:
            handle(reply, Origin())
        for report, _reply in threads:
            handle(report, Origin())
    incidents = list_incidents(engine)
    assert sorted(i.title for i in incidents) == [f"printer {n} broken" for n in range(5)]
    assert all(
        [e.kind for e in get_incident(engine, i.number).events].count("comment") == 1
        for i in incidents
    )


def test_a_reply_to_one_of_our_mails_or_with_a_tag_never_waits(desk, engine):
    desk.handle(make_mail(subject="Re: [INC-1] printer", sender=REPORTER, in_reply_to="x@y"))
    assert list_incidents(engine)  # the tag named no incident: opened at once


def test_waiting_can_be_switched_off(desk, engine, settings):
    desk.settings = settings.model_copy(
        update={"threading": settings.threading.model_copy(update={"wait_for_parent_seconds": 0})}
    )
    _report, reply = thread()
    assert desk.handle(reply).incident is not None
