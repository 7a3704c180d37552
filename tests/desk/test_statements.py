"""What applying one mail asks of the database: each thing once (mailproc.desk.mail and
mailproc.desk.writes). The statements are counted, not timed (speed is the benchmarks' job):
a new incident is one INSERT with its SLA due times in it, a reply reads its incident's
watchers, problems, escalations and history with one statement, and the statement that settles
a mail also tells whether a reply waits for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from mailproc.sla.state import SlaBook
from mailproc.store import db
from tests.support.mailfactory import make_mail, message_id_of

TINA = "Tina Solver <tina@example.com>"


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def stored_and_recomputed(engine: Engine, settings: Any, number: int, now: Any) -> tuple[Any, Any]:
    """The incident's stored SLA columns, and the same columns computed anew from its history."""
    with Session(engine) as session:
        incident = session.get(db.Incident, number)
        assert incident is not None
        stored = (
            incident.response_due,
            incident.resolution_due,
            incident.at_risk_at,
            incident.next_escalation_at,
        )
        book = SlaBook(settings)
        book.store(incident, book.assess(session, incident, now))
        again = (
            incident.response_due,
            incident.resolution_due,
            incident.at_risk_at,
            incident.next_escalation_at,
        )
        session.rollback()
    return stored, again


def test_a_new_incident_is_written_once_with_its_sla_due_times(desk, engine, settings, clock):
    with statements(engine) as seen:
        opened = desk.handle(make_mail(subject="Printer on fire"))
    assert sum(s.startswith("INSERT INTO incidents") for s in seen) == 1
    assert not [s for s in seen if s.startswith("UPDATE incidents")]
    stored, again = stored_and_recomputed(engine, settings, opened.incident, clock.now)
    assert stored == again and stored[0] is not None and stored[3] is not None


def test_a_new_incident_whose_commands_change_it_is_written_again_with_their_due_times(
    desk, engine, settings, clock
):
    plain = desk.handle(make_mail(subject="Printer on fire", sender=TINA))
    with statements(engine) as seen:
        urgent = desk.handle(make_mail(subject="Printer on fire [PRIORITY P1]", sender=TINA))
    assert "applied [PRIORITY P1]" in urgent.summary
    assert sum(s.startswith("UPDATE incidents") for s in seen) == 1
    stored, again = stored_and_recomputed(engine, settings, urgent.incident, clock.now)
    assert stored == again
    other, _ = stored_and_recomputed(engine, settings, plain.incident, clock.now)
    assert stored[1] < other[1]  # P1 is resolved sooner than the default priority


def test_a_reply_reads_what_it_needs_of_its_incident_with_one_statement(desk, engine):
    report = make_mail(subject="Printer on fire")
    opened = desk.handle(report)
    reply = make_mail(
        subject="Re: Printer on fire",
        body="Now it smokes.",
        in_reply_to=message_id_of(report),
        authenticated=True,
    )
    with statements(engine) as seen:
        answered = desk.handle(reply)
    assert answered.summary == f"comment on INC-{opened.incident}"
    tables = ("participants", "incident_problems", "escalations", "events")
    (read,) = [s for s in seen if any(f"FROM {t} " in f"{s} " for t in tables)]
    assert all(f"FROM {t} " in read for t in tables)


def test_settling_a_mail_tells_whether_replies_wait_for_it_without_another_query(desk, engine):
    with statements(engine) as seen:
        desk.handle(make_mail(subject="Printer on fire"))
    (asking,) = [s for s in seen if "awaited" in s]
    assert asking.startswith("UPDATE messages")
