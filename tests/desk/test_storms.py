"""Escalation storms fold into one mail (SQLite and PostgreSQL): one pass with more than
`sla.fold_escalations_above` escalations to one address sends it one mail listing them all;
the single mails are kept as suppressed rows that say so; a reply with [ACK INC-n] acts on
each incident; rows a dead pass left held go out on the next pass."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailproc.desk.escalations import Escalator
from mailproc.store import db
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail
from tests.support.notices import answer, notice_to

NETWORK = "network-support@example.com"  # around the clock; P3: response within 4 h
SAM = "Sam <sam@example.com>"


def rows(engine, kind: str, recipient: str) -> list[tuple[str, str | None]]:
    with Session(engine) as session:
        query = select(db.Outbox.status, db.Outbox.error).where(
            db.Outbox.kind == kind, db.Outbox.recipient == recipient
        )
        return [(row.status, row.error) for row in session.execute(query)]


def storm(desk, clock, count: int) -> None:
    clock.now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    for n in range(count):
        desk.handle(make_mail(to=NETWORK, subject=f"Switch {n} down"))
    clock.advance(hours=3, minutes=5)  # past 75 % of the response target: level 1, first line


def test_more_than_five_escalations_to_one_address_fold_into_one_mail(desk, engine, clock):
    storm(desk, clock, 6)
    assert Escalator(desk.settings, engine, clock).run() == 6
    single = rows(engine, "escalation", "servicedesk@example.com")
    assert len(single) == 6
    assert {row for row in single} == {
        ("suppressed", "folded into one mail with the pass's 6 escalations to it")
    }
    assert rows(engine, "escalations", "servicedesk@example.com") == [("pending", None)]
    folded = notice_to(engine, "servicedesk@example.com", "escalations")
    assert folded.subject == "6 incidents need attention: escalations folded into one mail"
    for n in range(1, 7):
        assert f"INC-{n}  Switch {n - 1} down" in folded.text and f"[ACK INC-{n}]" in folded.text

    reply = answer(folded, SAM, "Re: escalations [ACK INC-1] [ACK INC-2] [ACK INC-9]")
    outcome = desk.handle(reply)
    assert outcome.summary == "[ACK INC-1] [ACK INC-2] [ACK INC-9]: 2 acknowledged, 1 refused"
    assert get_incident(engine, 1).events[-1].kind == "acknowledged"
    assert get_incident(engine, 3).events[-1].kind == "escalated"
    said = notice_to(engine, "sam@example.com", "answer").text
    assert "[ACK INC-1] acknowledged" in said and "unknown incident INC-9" in said


def test_up_to_five_go_one_by_one(desk, engine, clock):
    storm(desk, clock, 5)
    Escalator(desk.settings, engine, clock).run()
    assert rows(engine, "escalation", "servicedesk@example.com") == [("pending", None)] * 5
    assert rows(engine, "escalations", "servicedesk@example.com") == []


def test_mails_a_dead_pass_left_held_go_out_with_the_next_pass(desk, engine, clock):
    storm(desk, clock, 2)
    Escalator(desk.settings, engine, clock).run()
    with Session(engine) as session, session.begin():  # as if the pass died before settling
        session.execute(update(db.Outbox).values(status=db.HELD, claim_token="dead"))
    clock.advance(minutes=11)
    Escalator(desk.settings, engine, clock).run()
    assert {status for status, _ in rows(engine, "escalation", "servicedesk@example.com")} == {
        "pending"
    }
