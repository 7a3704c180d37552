"""The SLA edge cases through the Desk and the escalation pass, on SQLite and PostgreSQL: a 24×7
service in Tokyo, targets in business days with a pause and a level at 50%, and times with
fractions of a second, which are stored, computed and shown as the same whole second."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailproc.config.settings import Settings, settings_from_dict
from mailproc.desk.escalations import Escalator
from mailproc.desk.mail import Desk
from mailproc.desk.problems import add_problem
from mailproc.sla.state import SlaBook
from mailproc.sla.views import explain, explanation_text
from mailproc.store import db
from tests.desk.test_escalations import (
    NORA,
    TINA,
    at,
    open_incident,
    paused_settings,
    say,
    sent,
    stored,
)
from tests.support.slakit import t

TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo_settings(settings: Settings) -> Settings:
    """The network service around the clock in Tokyo, P2 resolution within 2 business days."""
    data = settings.model_dump(exclude={"source"})
    data["calendars"]["tokyo"] = {"always": True, "zone": "Asia/Tokyo", "day_cutoff": "09:00"}
    data["services"]["network"]["calendar"] = "tokyo"
    data["sla"]["targets"]["P3"] = {"response": "4h", "resolution": "2bd"}
    return settings_from_dict(data, "test", {"MAILPROC_SECRET": "test"})


def jst(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(TOKYO).strftime("%a %Y-%m-%d %H:%M")


def test_a_24x7_service_in_tokyo_counts_business_days_from_tokyo_midnight(settings, engine, clock):
    custom = tokyo_settings(settings)
    desk = Desk(custom, engine, clock)
    clock.now = datetime(2026, 3, 2, 8, 30, tzinfo=TOKYO)  # before the 09:00 cut-off
    open_incident(desk, to="network-support@example.com", subject="Switch down")
    with Session(engine) as session:
        row = session.get(db.Incident, 1)
        assert row is not None
        assert jst(row.resolution_due) == "Wed 2026-03-04 00:00"  # end of Tuesday in Tokyo
        assert jst(row.response_due) == "Mon 2026-03-02 12:30"
    text = explanation_text(explain(engine, SlaBook(custom), 1, clock.now + timedelta(hours=1)))
    assert "calendar tokyo (Asia/Tokyo; 24×7)" in text
    assert "due 2026-03-04 00:00 JST — on track" in text


def test_a_day_target_pauses_and_escalates_at_half_its_working_time(settings, engine, clock):
    data = paused_settings(settings).model_dump(exclude={"source"})
    data["sla"]["targets"]["P2"] = {"response": "1h", "resolution": "3bd"}
    data["sla"]["escalation"] = [{"at": "50%", "to": ["team"], "targets": ["resolution"]}]
    custom = settings_from_dict(data, "test", {"MAILPROC_SECRET": "test"})
    desk, escalator = Desk(custom, engine, clock), Escalator(custom, engine, clock)
    add_problem(engine, t("2026-03-01 12:00"), "Mail relay broken")
    at(clock, "2026-03-02 09:00")  # Monday, before the cut-off: Monday is day 1 of 3
    first = open_incident(desk)  # email, P2
    assert stored(engine)["resolution_due"] == "Wed 2026-03-04 17:00"
    assert stored(engine)["next_escalation_at"] == "Tue 2026-03-03 13:30"  # 11h30m of 23h
    at(clock, "2026-03-02 10:00")
    say(desk, NORA, "Re: [ASSIGN tina]", first)
    say(desk, TINA, "Re: [RELATE PRB-1]", first)  # waiting: the clock pauses after 1h
    assert stored(engine)["resolution_due"] is None
    at(clock, "2026-03-03 10:00")
    say(desk, TINA, "Re: [ASSIGN tina]", first)  # runs again: 8h of business time later
    assert stored(engine)["resolution_due"] == "Thu 2026-03-05 17:00"
    at(clock, "2026-03-04 13:30")
    assert escalator.run() == 1
    assert sent(engine) == [("resolution", 1, 1, "Wed 2026-03-04 13:30")]


def test_fractions_of_a_second_become_the_same_whole_second_everywhere(desk, engine, clock):
    clock.now = datetime(2026, 3, 2, 7, 59, 59, 250_000, tzinfo=UTC)  # 08:59:59.25 in Prague
    open_incident(desk)  # email, P2: response 1h
    with Session(engine) as session:
        row = session.get(db.Incident, 1)
        assert row is not None
        created = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
        assert (row.created_at, row.response_due) == (created, created + timedelta(hours=1))
        events = session.query(db.Event).filter(db.Event.incident_id == 1).all()
        assert {e.at for e in events} == {created}
    text = explanation_text(explain(engine, SlaBook(desk.settings), 1, created))
    assert "running, 0m of 1h elapsed, due 2026-03-02 10:00 CET — on track" in text
