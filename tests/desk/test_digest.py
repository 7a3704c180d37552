"""The queue digest (SQLite and PostgreSQL): at the configured times in the calendar's zone,
each solver's open incidents and each team's unassigned, breached and at-risk ones; once per
moment whatever runs it; an empty one is not sent."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.config.settings import settings_from_dict
from mailproc.desk import queries
from mailproc.desk.digest import due_slot
from mailproc.desk.mail import Desk
from mailproc.store import db
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.notices import notice_to

TINA = "Tina <tina@example.com>"
# The embedded configuration: weekdays 08:00 in the office calendar's zone, Europe/Prague.
MONDAY_8_CET = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_the_digest_is_due_at_its_local_time_on_its_days_and_not_much_later(settings):
    assert due_slot(settings, MONDAY_8_CET) == MONDAY_8_CET
    assert due_slot(settings, datetime(2026, 11, 23, 6, 59, tzinfo=UTC)) is None  # 07:59 CET
    assert due_slot(settings, datetime(2026, 11, 23, 10, 0, tzinfo=UTC)) == MONDAY_8_CET
    assert due_slot(settings, datetime(2026, 11, 23, 11, 1, tzinfo=UTC)) is None  # > 4 h late
    assert due_slot(settings, datetime(2026, 11, 28, 7, 30, tzinfo=UTC)) is None  # a Saturday
    summer = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # 08:00 CEST
    assert due_slot(settings, summer) == summer


def digests(engine) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(db.Outbox).where(db.Outbox.kind == "digest")
        return int(session.scalar(query) or 0)


def test_solvers_and_teams_get_their_queue_once_at_the_configured_time(desk, engine, clock):
    clock.now = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)  # the Thursday before: due Friday
    first = make_mail(subject="Outlook disconnected")
    desk.handle(first)
    desk.handle(make_mail(subject="Printer jam", to="x@example.org"))  # general, unassigned
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN]", in_reply_to=message_id_of(first)))
    clock.now = datetime(2026, 11, 23, 6, 59, tzinfo=UTC)
    assert desk.send_digests() == 0  # 07:59 in Prague: not yet
    clock.now = MONDAY_8_CET
    sent = desk.send_digests()
    mine = notice_to(engine, "tina@example.com", "digest")
    assert mine.subject == "Your queue: 1 incident(s) to look at (Nov 23, 2026, 8:00 AM +0100)"
    assert "Breached (1)\n  INC-1  Outlook disconnected" in mine.text  # due on Friday
    team = notice_to(engine, "servicedesk@example.com", "digest")
    assert "Unassigned (1)\n  INC-2  Printer jam" in team.text
    assert "INC-1" not in team.text.split("Breached")[0]  # assigned: not in Unassigned
    assert sent == digests(engine) >= 2
    clock.advance(minutes=5)
    assert desk.send_digests() == 0  # once per moment
    sam = [r for r in _recipients(engine) if r == "sam@example.com"]
    assert sam == []  # sam's queue is empty: no digest


def _recipients(engine) -> list[str]:
    with Session(engine) as session:
        return list(session.scalars(select(db.Outbox.recipient).where(db.Outbox.kind == "digest")))


def test_a_long_queue_is_counted_and_cut_so_the_mail_stays_bounded(
    desk, engine, clock, monkeypatch
):
    monkeypatch.setattr(queries, "LISTED", 2)
    clock.now = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    for n in range(3):
        desk.handle(make_mail(subject=f"Printer {n} jams", to="x@example.org"))  # unassigned
    clock.now = MONDAY_8_CET
    desk.send_digests()
    team = notice_to(engine, "servicedesk@example.com", "digest")
    assert "Queue of general: 3 incident(s)" in team.subject
    assert "Unassigned (3)\n  INC-1  Printer 0 jams" in team.text
    assert "INC-3" not in team.text and "… and 1 more" in team.text
    desk.handle(make_mail(sender=TINA, subject="[LIST general]"))
    answer = notice_to(engine, "tina@example.com", "answer").text
    assert "Open incidents of general (3)" in answer and "… and 1 more" in answer


def test_a_digest_and_an_answer_are_written_in_their_readers_language(settings, engine, clock):
    data = settings.model_dump(exclude={"source"}, exclude_none=True)
    data["people"]["tina"]["language"] = "de"
    desk = Desk(settings_from_dict(data, "test", {"MAILPROC_SECRET": "tests"}), engine, clock)
    clock.now = datetime(2026, 11, 19, 9, 0, tzinfo=UTC)
    first = make_mail(subject="Outlook disconnected")
    desk.handle(first)
    desk.handle(make_mail(sender=TINA, subject="Re: [ASSIGN]", in_reply_to=message_id_of(first)))
    desk.handle(make_mail(subject="Printer jam", to="x@example.org"))  # general, unassigned
    desk.handle(make_mail(sender=TINA, subject="[MINE]", authenticated=True))
    answer = notice_to(engine, "tina@example.com", "answer")
    assert answer.subject == "Ihnen zugewiesen (1)"
    assert "  INC-1  Outlook disconnected\n      email · P2 · Solution · tina · " in answer.text
    clock.now = MONDAY_8_CET
    desk.send_digests()
    mine = notice_to(engine, "tina@example.com", "digest")
    assert mine.subject == "Ihre Warteschlange: 1 Vorfall/Vorfälle (23.11.2026, 08:00 MEZ)"
    assert "\nÜberfällig (1)\n  INC-1  Outlook disconnected\n" in mine.text
    assert "tina · überfällig · fällig (Lösung) 20.11.2026, 10:00 MEZ\n" in mine.text
    team = notice_to(engine, "servicedesk@example.com", "digest")
    assert team.subject.startswith("Queue of ")  # the team's list reads the desk's language
