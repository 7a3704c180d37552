"""Mail loops against the real outbox and a real SMTP server (SQLite and PostgreSQL).

A responder reads what mailproc sent it and answers each mail, as vacation notices and
misbehaving ticket systems do; the loop must stop. Floods trip the storm breaker once and send
one alert; a sender over the new-incident limit is stored but not acknowledged.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.config.safety import LimitsConfig
from mailproc.config.settings import SmtpConfig
from mailproc.desk.mail import Desk
from mailproc.notify.sender import send_pending
from mailproc.safety.views import limits as limits_view
from mailproc.safety.views import limits_text
from mailproc.store import db
from mailproc.store.queries import get_incident, list_incidents
from tests.support.bounces import vacation_reply
from tests.support.mailfactory import make_mail

LIMITS = LimitsConfig(
    replies_per_hour=30, replies_per_correspondent_per_hour=5, new_incidents_per_sender_per_hour=8
)
ROBOT = "Robot <robot@example.org>"
NORA = "nora@example.com"  # the embedded configuration's admin


@pytest.fixture
def limited(settings, engine, clock, smtp_server):
    smtp = SmtpConfig(host=smtp_server.host, port=smtp_server.port, security="none")
    tight = settings.model_copy(update={"limits": LIMITS, "smtp": smtp})
    return Desk(tight, engine, clock)


def flush(desk: Desk, capture) -> list:
    """Send the outbox; the mails that reached the SMTP server in this flush."""
    before = len(capture.messages)
    send_pending(desk.settings, desk.engine, desk.clock)
    return capture.messages[before:]


def to(messages: list, address: str) -> list:
    return [m for m in messages if m.rcpt_tos == (address,)]


def ping_pong(
    desk: Desk, capture, answer: Callable[[object], bytes], rounds: int = 40
) -> tuple[int, int]:
    """Let a responder at robot@example.org answer every mail it gets until the loop stops
    (or `rounds` run out); returns the mails it got and the rounds it took."""
    received, inbox = 0, to(flush(desk, capture), "robot@example.org")
    for played in range(rounds):
        if not inbox:
            return received, played
        received += len(inbox)
        for mail in inbox:
            desk.handle(answer(mail))
        inbox = to(flush(desk, capture), "robot@example.org")
    raise AssertionError(f"the loop still ran after {rounds} rounds")


def statuses(engine, kind: str) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(db.Outbox.status).where(db.Outbox.kind == kind).order_by(db.Outbox.id)
            )
        )


def test_a_vacation_responder_gets_our_acknowledgment_and_its_answer_gets_nothing(
    limited, smtp_server
):
    limited.handle(make_mail(sender=ROBOT, subject="Printer broken"))
    got, rounds = ping_pong(
        limited,
        smtp_server,
        lambda m: vacation_reply(ROBOT, m.message["Message-ID"].strip("<>"), m.subject),
    )
    assert (got, rounds) == (1, 1)  # our acknowledgment; its auto-reply produced zero mails


def test_a_responder_without_markers_that_threads_gets_nothing_back(limited, engine, smtp_server):
    limited.handle(make_mail(sender=ROBOT, subject="Printer broken"))
    got, rounds = ping_pong(
        limited,
        smtp_server,
        lambda m: vacation_reply(
            ROBOT, m.message["Message-ID"].strip("<>"), m.subject, rfc3834=False
        ),
    )
    assert (got, rounds) == (1, 1)  # a reporter's comment: nobody is told of their own words
    # proven by the signed Message-ID it answers (sent to the robot alone): a comment
    assert [e.kind for e in get_incident(engine, 1).events] == ["created", "comment"]


def test_a_responder_opening_new_incidents_trips_its_breaker_once(
    limited, engine, clock, smtp_server
):
    """The worst responder: no markers, no threading — each answer a new incident."""

    def fresh(m) -> bytes:
        return vacation_reply(ROBOT, "", m.subject.split("] ", 1)[-1], rfc3834=False, thread=False)

    limited.handle(make_mail(sender=ROBOT, subject="Printer broken"))
    got, _ = ping_pong(limited, smtp_server, fresh)
    assert got == LIMITS.replies_per_correspondent_per_hour  # then the breaker holds the rest
    incidents = list_incidents(engine)
    assert len(incidents) == got + 1  # every mail stored: nothing dropped
    assert statuses(engine, "acknowledgment")[-1] == "suppressed"
    alerts = [m for m in smtp_server.messages if "storm breaker open" in (m.subject or "")]
    assert [m.rcpt_tos for m in alerts] == [(NORA,)]
    assert "robot@example.org" in alerts[0].subject
    view = limits_view(engine, limited.settings, clock())
    assert [(b.scope, b.open, b.trips) for b in view.breakers] == [("robot@example.org", True, 1)]
    # an hour later the breaker closes: the next mail is acknowledged, and a loop would trip
    # it again (and alert again) after the same number of answers
    clock.advance(hours=1, minutes=1)
    limited.handle(make_mail(sender=ROBOT, subject="Scanner broken"))
    assert to(flush(limited, smtp_server), "robot@example.org")
    view = limits_view(engine, limited.settings, clock())
    assert [(b.scope, b.open) for b in view.breakers] == [("robot@example.org", False)]


def test_a_storm_of_new_senders_trips_the_global_breaker_and_alerts_once(
    limited, engine, clock, smtp_server
):
    for n in range(40):
        limited.handle(make_mail(sender=f"user{n}@example.org", subject=f"storm {n}"))
    acks = statuses(engine, "acknowledgment")
    assert acks.count("pending") == LIMITS.replies_per_hour
    assert acks.count("suppressed") == 40 - LIMITS.replies_per_hour
    sent = flush(limited, smtp_server)
    alerts = to(sent, NORA)
    assert len(alerts) == 1 and "storm breaker open for everyone" in alerts[0].subject
    body = alerts[0].message.get_content()
    assert "30 acknowledgments and transcripts in the last hour" in body
    assert len(list_incidents(engine)) == 40  # all stored
    text = limits_text(limits_view(engine, limited.settings, clock()))
    assert "storm breaker open" in text and "all answers" in text
    clock.advance(hours=1, minutes=1)
    limited.handle(make_mail(sender="late@example.org", subject="after the storm"))
    assert statuses(engine, "acknowledgment")[-1] == "pending"
    assert "storm breaker closed" in limits_text(limits_view(engine, limited.settings, clock()))


def test_a_sender_over_the_new_incident_limit_is_stored_but_not_acknowledged(
    limited, engine, clock
):
    limit = LIMITS.new_incidents_per_sender_per_hour
    loose = LIMITS.model_copy(update={"replies_per_correspondent_per_hour": 100})
    limited = Desk(limited.settings.model_copy(update={"limits": loose}), engine, clock)
    for n in range(limit + 2):
        clock.advance(minutes=1)
        outcome = limited.handle(make_mail(sender="flood@example.org", subject=f"alarm {n}"))
    assert "not acknowledged: rate limit" in outcome.summary
    assert len(list_incidents(engine)) == limit + 2
    assert statuses(engine, "acknowledgment") == ["pending"] * limit
    event = get_incident(engine, limit + 1).events[-1]
    assert (event.kind, event.detail) == (
        "rate_limited",
        {"sender": "flood@example.org", "count": limit + 1, "limit": limit},
    )
    view = limits_view(engine, limited.settings, clock())
    assert view.senders == (("flood@example.org", limit + 2),)
    clock.advance(hours=1)
    limited.handle(make_mail(sender="flood@example.org", subject="an hour later"))
    assert statuses(engine, "acknowledgment")[-1] == "pending"


def test_several_desks_at_once_open_the_breaker_once(limited, settings, engine, clock):
    """As several daemons on one database would: one alert, and the limit holds to within
    one answer per concurrent transaction."""
    errors: list[BaseException] = []

    def work(start: int) -> None:
        desk = Desk(limited.settings, engine, clock)
        try:
            for n in range(start, start + 12):
                desk.handle(make_mail(sender=f"u{n}@example.org", subject=f"storm {n}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(list_incidents(engine)) == 48
    assert statuses(engine, "alert").count("pending") == 1
    assert LIMITS.replies_per_hour <= statuses(engine, "acknowledgment").count("pending") <= 33
