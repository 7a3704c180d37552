"""Waiting for the customer (SQLite and PostgreSQL): [WAIT] enters the paused status, the
resolution clock stops, the reporter's answer brings the incident back and tells the
assignee; without an answer one reminder, then the close."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from mailproc.desk.mail import Desk
from mailproc.store import db
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.notices import answer, notice_to

ALICE = "Alice <alice@example.org>"
TINA = "Tina <tina@example.com>"


def assigned(desk: Desk, clock) -> int:
    raw = make_mail(sender=ALICE)
    number = desk.handle(raw).incident
    clock.advance(minutes=10)
    reply = make_mail(sender=TINA, subject="Re: [ASSIGN]", in_reply_to=message_id_of(raw))
    desk.handle(reply)
    return number


def test_wait_stops_the_resolution_clock_and_the_reporters_answer_resumes_it(desk, engine, clock):
    number = assigned(desk, clock)
    assert get_incident(engine, number).incident.status == "Solution"
    clock.advance(minutes=20)
    question = make_mail(
        sender=TINA,
        subject=f"Re: [INC-{number}] [WAIT]",
        body="Which Outlook version do you use?",
    )
    assert "applied [WAIT]" in desk.handle(question).summary
    assert get_incident(engine, number).incident.status == "Waiting"
    asked = notice_to(engine, "alice@example.org", "question")
    assert "Your answer is needed" in asked.subject
    assert "Which Outlook version do you use?" in asked.text
    with Session(engine) as session:
        waiting = session.get(db.Incident, number)
        assert (waiting.resolution_due, waiting.next_escalation_at) == (None, None)

    clock.advance(days=2)  # two days of waiting do not count against the target
    outcome = desk.handle(answer(asked, ALICE, f"Re: [INC-{number}]", body="Outlook 2021."))
    assert outcome.summary == f"comment on INC-{number}, resumed (Solution)"
    detail = get_incident(engine, number)
    assert detail.incident.status == "Solution"
    status = [e.detail for e in detail.events if e.kind == "status"][-1]
    assert status == {"from": "Waiting", "to": "Solution", "by": "reply"}
    told = notice_to(engine, "tina@example.com", "resumed")
    assert "Outlook 2021." in told.text
    with Session(engine) as session:
        incident = session.get(db.Incident, number)
        resolution = desk.sla.assess(session, incident, clock.now).status.resolution
        assert incident.resolution_due is not None
    # 30 minutes of business time ran before the wait; the two days of waiting do not count
    assert resolution.elapsed == timedelta(minutes=30)


def test_a_waiting_reporter_is_reminded_once_then_the_incident_closes(desk, engine, clock):
    number = assigned(desk, clock)
    desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [WAIT]", body="Logs?"))
    clock.advance(days=2)
    assert desk.remind_reporters() == []
    clock.advance(days=1, minutes=1)
    assert desk.remind_reporters() == [number]
    assert desk.remind_reporters() == []  # once per wait
    reminder = notice_to(engine, "alice@example.org", "reminder")
    assert "we are still waiting for your answer" in reminder.text
    assert "Logs?" in reminder.text
    assert "closed on Dec 3, 2026" in " ".join(reminder.text.split())
    clock.advance(days=7)
    assert desk.close_timed_out() == [number]
    detail = get_incident(engine, number)
    assert detail.incident.status == "Closed"
    assert [e.kind for e in detail.events][-2:] == ["reminded", "status"]


def test_wait_is_refused_where_the_workflow_has_no_waiting_status(desk, engine, clock):
    number = assigned(desk, clock)
    desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [CLOSE]"))
    outcome = desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [WAIT]"))
    assert "refused [WAIT] (WAIT is not allowed in status Closed" in outcome.summary


def test_a_solvers_assign_takes_a_waiting_incident_up_again(desk, engine, clock):
    number = assigned(desk, clock)
    desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [WAIT]", body="Logs?"))
    desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [ASSIGN]", body="Got them."))
    assert get_incident(engine, number).incident.status == "Solution"
