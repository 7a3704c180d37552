"""The escalation pass over real databases (SQLite and PostgreSQL), with a fake clock walked
across business hours, nights, weekends, holidays and a daylight-saving change, as the daemon
would run it: each level once per incident, target and cycle; [ACK] and solvers' actions stop
a ladder; priority changes, moves, pauses and reopens recompute; closed and resolved incidents
never escalate; the mails reach a real SMTP server.

The embedded configuration: the office calendar (Europe/Prague, Mon–Fri 08:00–12:00 and
13:00–17:00, CZ holidays); targets P1 30m/4h, P2 1h/8h, P3 4h/24h; the ladder 75 %, breach,
breach + 2h for both targets; email (P2 by default) and general (P3) in the office, network
around the clock with the Resolved workflow.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings, SmtpConfig, settings_from_dict
from mailproc.desk.escalations import Escalator, recompute_due_times
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition
from mailproc.desk.problems import add_problem
from mailproc.notify.sender import send_pending
from mailproc.sla.clocks import compute
from mailproc.sla.ladder import plan
from mailproc.sla.state import Assessment, SlaBook, history
from mailproc.sla.timeline import timeline
from mailproc.store import db, schema
from mailproc.store.db import make_engine
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.slakit import t, wall

ALICE = "Alice Novák <alice@example.org>"
TINA, NORA = "Tina <tina@example.com>", "Nora <nora@example.com>"
EMAIL, GENERAL, NETWORK = (
    "mail-support@example.com",
    "support@example.com",
    "network-support@example.com",
)
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class Passes:
    """The escalation pass every `step` of the fake clock, as the daemon's job would run it."""

    def __init__(self, settings: Settings, engine: Engine, clock) -> None:
        self.escalator = Escalator(settings, engine, clock)
        self.clock = clock

    def until(self, wall_time: str, step: timedelta = timedelta(minutes=15)) -> None:
        end = t(wall_time)
        while self.clock.now < end:
            ticks = (self.clock.now - EPOCH) // step + 1  # on the step's grid, like cron
            self.clock.now = min(EPOCH + ticks * step, end)
            self.escalator.run()


@pytest.fixture
def passes(settings, engine, clock) -> Passes:
    return Passes(settings, engine, clock)


def at(clock, wall_time: str) -> None:
    clock.now = t(wall_time)


def open_incident(desk: Desk, to: str = EMAIL, subject: str = "Exchange is down", **kw) -> str:
    raw = make_mail(sender=kw.pop("sender", ALICE), to=to, subject=subject, **kw)
    outcome = desk.handle(raw)
    assert outcome.disposition is Disposition.PROCESSED, outcome.summary
    return message_id_of(raw)


def say(desk: Desk, sender: str, subject: str, first: str, body: str = "") -> None:
    raw = make_mail(
        sender=sender, subject=subject, in_reply_to=first, body=body, authenticated=True
    )
    outcome = desk.handle(raw)
    assert outcome.disposition is Disposition.PROCESSED, outcome.summary


def sent(engine: Engine, incident: int = 1) -> list[tuple[str, int, int, str | None]]:
    with Session(engine) as session:
        rows = session.scalars(
            select(db.Escalation)
            .where(db.Escalation.incident_id == incident)
            .order_by(db.Escalation.id)
        )
        return [(r.target, r.cycle, r.level, wall(r.at)) for r in rows]


def stored(engine: Engine, incident: int = 1) -> dict[str, str | None]:
    with Session(engine) as session:
        row = session.get(db.Incident, incident)
        assert row is not None
        names = ("response_due", "resolution_due", "at_risk_at", "next_escalation_at")
        return {name: wall(getattr(row, name)) for name in names}


def test_each_level_is_mailed_once_per_target_across_a_night_and_a_weekend(
    desk, engine, clock, passes
):
    at(clock, "2026-03-06 15:30")  # a Friday; P2: response 1h, resolution 8h of office time
    open_incident(desk)
    assert stored(engine) == {
        "response_due": "Fri 2026-03-06 16:30",
        "resolution_due": "Mon 2026-03-09 15:30",
        "at_risk_at": "Fri 2026-03-06 16:15",
        "next_escalation_at": "Fri 2026-03-06 16:15",
    }
    passes.until("2026-03-10 12:00")
    assert sent(engine) == [
        ("response", 1, 1, "Fri 2026-03-06 16:15"),  # 75 % of 1h
        ("response", 1, 2, "Fri 2026-03-06 16:30"),  # the breach
        ("response", 1, 3, "Mon 2026-03-09 09:30"),  # + 2 business hours: 30m Fri, 1h30 Mon
        ("resolution", 1, 1, "Mon 2026-03-09 13:30"),  # 6h: 1h30 Fri, 4h Mon morning, 30m
        ("resolution", 1, 2, "Mon 2026-03-09 15:30"),
        ("resolution", 1, 3, "Tue 2026-03-10 08:30"),
    ]
    assert stored(engine)["next_escalation_at"] is None  # the ladders are done
    assert passes.escalator.run() == 0
    history = get_incident(engine, 1).events
    escalated = [e.detail for e in history if e.kind == "escalated"]
    assert [(d["target"], d["level"], d["to"]) for d in escalated] == [
        ("response", 1, ["servicedesk@example.com"]),  # assignee (nobody) and first line
        ("response", 2, ["exchange-team@example.com"]),
        ("response", 3, ["duty-manager@example.com"]),
        ("resolution", 1, ["servicedesk@example.com"]),
        ("resolution", 2, ["exchange-team@example.com"]),
        ("resolution", 3, ["duty-manager@example.com"]),
    ]
    assert escalated[0]["reason"] == "75% of the response time used, 15m of business time left"
    assert escalated[2]["reason"] == "the response target is breached, 2h of business time late"
    with Session(engine) as session:
        kinds = session.scalars(select(db.Outbox.kind).where(db.Outbox.kind == "escalation"))
        assert len(list(kinds)) == 6


def test_due_times_skip_a_daylight_saving_weekend_and_the_christmas_holidays(
    desk, engine, clock, passes
):
    at(clock, "2026-03-27 16:30")  # Friday before the clocks go forward (CET -> CEST)
    open_incident(desk)
    at(clock, "2026-12-23 16:00")  # Wednesday; 24-26 Dec are Czech holidays, then a weekend
    open_incident(desk, to=GENERAL, subject="Printer jammed")  # general: P3, response 4h
    assert stored(engine, 1)["next_escalation_at"] == "Mon 2026-03-30 08:15"  # CEST now
    assert stored(engine, 2)["response_due"] == "Mon 2026-12-28 11:00"
    assert stored(engine, 2)["next_escalation_at"] == "Mon 2026-12-28 10:00"
    at(clock, "2026-03-30 08:10")
    assert passes.escalator.run() == 0
    passes.until("2026-03-30 08:20", step=timedelta(minutes=5))
    assert sent(engine, 1) == [("response", 1, 1, "Mon 2026-03-30 08:15")]
    at(clock, "2026-12-28 09:55")
    passes.until("2026-12-28 10:05", step=timedelta(minutes=5))
    assert sent(engine, 2) == [("response", 1, 1, "Mon 2026-12-28 10:00")]


def test_a_priority_change_recomputes_and_sends_the_levels_already_passed_at_once(
    desk, engine, clock, passes
):
    at(clock, "2026-03-02 09:00")  # general: P3, response 4h, resolution 24h
    first = open_incident(desk, to=GENERAL)
    passes.until("2026-03-02 13:30")
    assert sent(engine) == [("response", 1, 1, "Mon 2026-03-02 12:00")]
    assert stored(engine)["resolution_due"] == "Thu 2026-03-05 09:00"
    say(desk, NORA, "Re: [PRIORITY P1]", first)  # 3h30 elapsed of the new 4h: late for 75 %
    assert stored(engine) == {
        "response_due": None,  # an admin's action is a response
        "resolution_due": "Mon 2026-03-02 14:00",
        "at_risk_at": "Mon 2026-03-02 12:00",
        "next_escalation_at": "Mon 2026-03-02 12:00",  # already passed: the next pass sends it
    }
    passes.until("2026-03-02 17:00")
    assert sent(engine)[1:] == [
        ("resolution", 1, 1, "Mon 2026-03-02 13:45"),  # the next pass
        ("resolution", 1, 2, "Mon 2026-03-02 14:00"),
        ("resolution", 1, 3, "Mon 2026-03-02 16:00"),
    ]


def test_a_move_recomputes_in_the_new_services_calendar(desk, engine, clock, passes):
    at(clock, "2026-03-06 16:30")  # Friday, email in the office calendar
    first = open_incident(desk)
    assert stored(engine)["resolution_due"] == "Mon 2026-03-09 16:30"
    at(clock, "2026-03-06 16:45")
    say(desk, NORA, "Re: [MOVE network]", first)  # 15m elapsed; the rest runs 24x7
    assert stored(engine)["resolution_due"] == "Sat 2026-03-07 00:30"
    passes.until("2026-03-07 06:00")
    assert sent(engine) == [
        ("resolution", 1, 1, "Fri 2026-03-06 22:30"),  # 6h: 15m in the office, 5h45 24x7
        ("resolution", 1, 2, "Sat 2026-03-07 00:30"),
        ("resolution", 1, 3, "Sat 2026-03-07 02:30"),
    ]
    recipients = [e.detail["to"] for e in get_incident(engine, 1).events if e.kind == "escalated"]
    assert recipients[1] == ["network-team@example.com"]  # the new service's team


def test_closed_or_resolved_incidents_are_never_escalated(desk, engine, clock, passes):
    at(clock, "2026-03-02 09:00")
    first = open_incident(desk)
    network = open_incident(desk, to=NETWORK, subject="Switch down")
    at(clock, "2026-03-02 09:20")
    say(desk, NORA, "Re: [CLOSE]", first)
    say(desk, "Sam <sam@example.com>", "Re: [RESOLVE]", network)
    assert stored(engine, 1)["next_escalation_at"] is None
    assert stored(engine, 2)["next_escalation_at"] is None
    with Session(engine) as session, session.begin():  # a stale column must not matter either
        session.execute(update(db.Incident).values(next_escalation_at=t("2026-03-02 09:30")))
    passes.until("2026-03-05 12:00", step=timedelta(hours=1))
    assert sent(engine, 1) == sent(engine, 2) == []
    assert stored(engine, 1)["next_escalation_at"] is None


def test_an_ack_from_an_escalation_recipient_stops_that_targets_ladder_and_the_mails_arrive(
    settings, desk, engine, clock, passes, smtp_server
):
    smtp = SmtpConfig(host=smtp_server.host, port=smtp_server.port, security="none")
    mailer = settings.model_copy(update={"smtp": smtp})
    at(clock, "2026-03-02 09:00")
    open_incident(desk)
    assert send_pending(mailer, engine, clock) == 2  # acknowledgment, new incident
    passes.until("2026-03-02 09:45")
    assert sent(engine) == [("response", 1, 1, "Mon 2026-03-02 09:45")]
    smtp_server.clear()
    assert send_pending(mailer, engine, clock) == 1
    (escalation,) = smtp_server.messages
    msg = escalation.message
    assert escalation.rcpt_tos == ("servicedesk@example.com",)
    assert msg["Subject"] == "[INC-1] Escalation (level 1): Exchange is down"
    body = " ".join(msg.get_content().split())
    assert "INC-1 needs attention: 75% of the response time used, 15m of business time left" in body
    assert "reply with [ACK] in the subject" in body and "assignee: nobody" in body
    assert "escalated: response level 1" in body  # the history, this escalation included
    at(clock, "2026-03-02 09:50")
    reply = make_mail(
        sender="Service desk <servicedesk@example.com>",
        subject=f"Re: {msg['Subject']} [ACK]",
        in_reply_to=msg["Message-ID"].strip("<>"),
    )
    assert desk.handle(reply).disposition is Disposition.PROCESSED
    history = get_incident(engine, 1).events
    assert (history[-1].kind, history[-1].actor) == ("acknowledged", "servicedesk@example.com")
    passes.until("2026-03-02 17:00")
    assert sent(engine) == [
        ("response", 1, 1, "Mon 2026-03-02 09:45"),  # level 2 at 10:00 is not sent
        ("resolution", 1, 1, "Mon 2026-03-02 16:00"),  # the other ladder goes on
    ]
    smtp_server.clear()
    send_pending(mailer, engine, clock)
    subjects = {(m.rcpt_tos, m.subject) for m in smtp_server.messages}
    assert (("servicedesk@example.com",), "[INC-1] Escalation (level 1): Exchange is down") in (
        subjects
    )


def test_an_ack_from_anyone_else_is_refused(desk, engine, clock, passes):
    at(clock, "2026-03-02 09:00")
    first = open_incident(desk)
    passes.until("2026-03-02 09:45")
    say(desk, "Mallory <mallory@example.net>", "Re: [ACK]", first)
    say(desk, ALICE, "Re: [ACK]", first)
    kinds = [e.kind for e in get_incident(engine, 1).events]
    assert "acknowledged" not in kinds and kinds.count("command_rejected") == 2
    passes.until("2026-03-02 10:00")
    assert [level for _, _, level, _ in sent(engine)] == [1, 2]


def test_a_solvers_real_action_stops_the_ladder(desk, engine, clock, passes):
    at(clock, "2026-03-02 09:00")
    first = open_incident(desk)
    at(clock, "2026-03-02 09:05")
    say(desk, NORA, "Re: [ASSIGN tina]", first)  # the response clock stops
    passes.until("2026-03-02 16:30")
    assert sent(engine) == [("resolution", 1, 1, "Mon 2026-03-02 16:00")]
    escalated = [e for e in get_incident(engine, 1).events if e.kind == "escalated"]
    assert escalated[0].detail["to"] == ["tina@example.com", "servicedesk@example.com"]
    say(desk, TINA, "Re: INC-1", first, body="Working on it, the queue is stuck.")
    passes.until("2026-03-04 17:00", step=timedelta(hours=1))
    assert len(sent(engine)) == 1


def test_a_reopen_restarts_the_resolution_clock_and_escalates_again(desk, engine, clock, passes):
    at(clock, "2026-03-02 09:00")
    first = open_incident(desk)
    at(clock, "2026-03-02 09:05")
    say(desk, NORA, "Re: [ASSIGN tina]", first)
    passes.until("2026-03-03 11:30")
    assert [(c, lv) for _, c, lv, _ in sent(engine)] == [(1, 1), (1, 2), (1, 3)]
    say(desk, TINA, "Re: [CLOSE]", first)
    passes.until("2026-03-03 13:00", step=timedelta(hours=1))
    say(desk, ALICE, "Re: INC-1", first, body="It is broken again.")  # reopens: cycle 2
    assert get_incident(engine, 1).incident.status == "Solution"
    assert stored(engine)["resolution_due"] == "Wed 2026-03-04 12:00"  # 8h from 13:00 on
    passes.until("2026-03-04 12:30")
    assert sent(engine)[3:] == [
        ("resolution", 2, 1, "Wed 2026-03-04 10:00"),
        ("resolution", 2, 2, "Wed 2026-03-04 12:00"),
    ]


def paused_settings(settings: Settings) -> Settings:
    """The default workflow plus Waiting, a paused status: [RELATE PRB-n] parks an incident
    there until the problem is fixed, [ASSIGN] takes it up again."""
    data = settings.model_dump(exclude={"source"})
    workflow = data["workflows"]["default"]
    waiting = {"name": "Waiting", "kind": "open", "paused": True}
    workflow["statuses"] = [*workflow["statuses"], waiting]
    transitions = workflow["transitions"]
    transitions["RELATE"] = {"New": "Waiting", "Solution": "Waiting", "Closed": "Closed"}
    transitions["ASSIGN"] = {**transitions["ASSIGN"], "Waiting": "Solution"}
    transitions["CLOSE"] = {**transitions["CLOSE"], "Waiting": "Closed"}
    return settings_from_dict(data, "test", {"MAILPROC_SECRET": "t"})


def test_a_paused_status_stops_the_resolution_clock(settings, engine, clock):
    custom = paused_settings(settings)
    desk, passes = Desk(custom, engine, clock), Passes(custom, engine, clock)
    add_problem(engine, t("2026-03-01 12:00"), "Mail relay broken")
    at(clock, "2026-03-02 09:00")
    first = open_incident(desk)
    at(clock, "2026-03-02 09:05")
    say(desk, NORA, "Re: [ASSIGN tina]", first)
    at(clock, "2026-03-02 10:00")
    say(desk, TINA, "Re: [RELATE PRB-1]", first)  # 1h elapsed, then waiting
    assert stored(engine) == {
        "response_due": None,
        "resolution_due": None,
        "at_risk_at": None,
        "next_escalation_at": None,
    }
    passes.until("2026-03-03 10:00", step=timedelta(hours=1))
    say(desk, TINA, "Re: [ASSIGN tina]", first)  # back to Solution: 7h to go
    assert stored(engine)["resolution_due"] == "Wed 2026-03-04 09:00"
    passes.until("2026-03-03 17:00")
    assert sent(engine) == [("resolution", 1, 1, "Tue 2026-03-03 16:00")]


class Stale(SlaBook):
    """Plans as if no level had been sent yet: a pass that raced another without a row lock."""

    def assess(self, session, incident, now, explain=False):
        status = compute(timeline(history(session, incident.id), self.settings), self.policy, now)
        return Assessment(status, plan(status, self.policy.of(status.service).ladder, [], now))


def test_the_unique_escalation_row_is_the_final_guard(settings, desk, engine, clock, caplog):
    caplog.set_level(logging.INFO, "mailproc.desk.escalations")
    at(clock, "2026-03-02 09:00")
    open_incident(desk)
    at(clock, "2026-03-02 09:45")
    assert Escalator(settings, engine, clock).run() == 1
    with Session(engine) as session, session.begin():
        session.execute(update(db.Incident).values(next_escalation_at=clock.now))
    assert Escalator(settings, engine, clock, book=Stale(settings)).run() == 0
    assert "another escalation pass sent this level first" in caplog.text
    with Session(engine) as session:
        outbox = session.scalar(select(func.count()).where(db.Outbox.kind == "escalation"))
        events = session.scalar(select(func.count()).where(db.Event.kind == "escalated"))
    assert (len(sent(engine)), outbox, events) == (1, 1, 1)


def test_recompute_fills_in_due_times_after_an_upgrade(desk, settings, engine, clock):
    at(clock, "2026-03-02 09:00")
    open_incident(desk)
    open_incident(desk, to=NETWORK)
    with Session(engine) as session, session.begin():
        session.execute(
            update(db.Incident).values(
                response_due=None, resolution_due=None, at_risk_at=None, next_escalation_at=None
            )
        )
    assert recompute_due_times(settings, engine, clock, batch=1) == 2
    assert stored(engine, 1)["next_escalation_at"] == "Mon 2026-03-02 09:45"
    assert stored(engine, 2)["resolution_due"] == "Tue 2026-03-03 09:00"  # 24h, round the clock


def test_impact_and_urgency_are_stored_with_the_incident(desk, engine, clock):
    at(clock, "2026-03-02 09:00")
    first = open_incident(desk)
    say(desk, NORA, "Re: [IMPACT high] [URGENCY high]", first)
    with Session(engine) as session:
        row = session.get(db.Incident, 1)
        assert row is not None
        assert (row.impact, row.urgency, row.priority) == ("high", "high", "P1")
    say(desk, NORA, "Re: [URGENCY low]", first)  # the stored impact still counts: high x low
    assert get_incident(engine, 1).incident.priority == "P3"


def test_the_migration_keeps_incidents_and_recompute_gives_them_due_times(settings, clock):
    engine = make_engine(settings.database_url)
    config = schema._config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        created = t("2026-03-02 09:00")
        connection.execute(
            text(
                "INSERT INTO incidents (id, service, status, priority, title, reporter, "
                "reporter_name, created_at, updated_at) VALUES "
                "(1, 'email', 'New', 'P2', 'Old one', 'alice@example.org', '', :at, :at)"
            ),
            {"at": created.replace(tzinfo=None)},
        )
        connection.execute(
            text(
                "INSERT INTO events (incident_id, at, actor, kind, detail) VALUES "
                "(1, :at, 'alice@example.org', 'created', :detail)"
            ),
            {"at": created.replace(tzinfo=None), "detail": '{"service": "email", "title": "x"}'},
        )
        command.upgrade(config, "head")
    assert stored(engine)["next_escalation_at"] is None
    assert recompute_due_times(settings, engine, clock) == 1
    assert stored(engine)["response_due"] == "Mon 2026-03-02 10:00"
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
        assert connection.execute(text("SELECT title FROM incidents")).scalar() == "Old one"
    engine.dispose()
