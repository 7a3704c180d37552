"""Notices through the Desk and the escalation pass, on SQLite and PostgreSQL, in each reader's
language and time zone: a reporter in Berlin reads German, a solver in São Paulo gets the
escalation in São Paulo time, a 24×7 service in Tokyo speaks Tokyo time, and a reporter's mail
may declare a language."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings, settings_from_dict
from mailproc.desk.escalations import Escalator
from mailproc.desk.mail import Desk
from mailproc.notify.letter import letter_from_json
from mailproc.store import db
from tests.desk.test_escalations import ALICE, NORA, at, open_incident, say
from tests.support.mailfactory import make_mail

NETWORK = "network-support@example.com"


def localized(settings: Settings, **extra: dict) -> Settings:
    data = settings.model_dump(exclude={"source"})
    data["directory"] = {"alice@example.org": {"language": "de", "zone": "Europe/Berlin"}}
    data["people"]["sam"]["zone"] = "America/Sao_Paulo"
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return settings_from_dict(data, "test", {"MAILPROC_SECRET": "test"})


def letters(engine, kind: str) -> dict[str, tuple[str, str]]:
    """The queued letters of a kind: recipient -> (subject, text)."""
    with Session(engine) as session:
        rows = session.scalars(select(db.Outbox).where(db.Outbox.kind == kind)).all()
        found = {}
        for row in rows:
            letter = letter_from_json(row.letter)
            found[row.recipient] = (letter.subject, letter.text)
        return found


def test_a_reporter_in_berlin_reads_german_with_local_times(settings, engine, clock):
    desk = Desk(localized(settings), engine, clock)
    clock.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    first = open_incident(desk, to=NETWORK, subject="Switch im 3. Stock ist aus")
    subject, text = letters(engine, "acknowledgment")["alice@example.org"]
    assert subject == "[INC-1] Ihre Meldung ist eingegangen: Switch im 3. Stock ist aus"
    assert "wir haben Ihre Meldung am 02.03.2026, 09:00 MEZ erhalten" in text
    assert "Sie liegt jetzt bei Netzwerk, Priorität P3." in text
    clock.now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    say(desk, NORA, "Re: [RESOLVE]", first)
    subject, text = letters(engine, "resolved")["alice@example.org"]
    assert subject == "[INC-1] Gelöst: Switch im 3. Stock ist aus"
    assert "seit 02.03.2026, 10:30 MEZ gelöst ist" in text
    assert "UTC" not in text
    english = letters(engine, "new_incident")["servicedesk@example.com"][1]
    assert "opened:   Mar 2, 2026, 8:00\u202fAM UTC" in english  # the 24x7 calendar: UTC


def test_a_solver_in_sao_paulo_gets_the_escalation_in_sao_paulo_time(settings, engine, clock):
    custom = localized(settings)
    desk, escalator = Desk(custom, engine, clock), Escalator(custom, engine, clock)
    at(clock, "2026-03-02 09:00")  # Prague; network runs 24x7: P3, response 4h
    first = open_incident(desk, to=NETWORK, subject="Slow VPN")
    say(desk, NORA, "Re: [ASSIGN sam]", first)
    at(clock, "2026-03-03 03:00")  # 75% of the 24h resolution target has passed
    assert escalator.run() >= 1
    subject, text = letters(engine, "escalation")["sam@example.com"]
    assert subject == "[INC-1] Escalation (level 1): Slow VPN"
    assert "(due Mar 3, 2026, 5:00\u202fAM -0300)" in text  # 09:00 in Prague, 05:00 in São Paulo
    assert "opened Mar 2, 2026, 5:00\u202fAM -0300" in text


def test_a_24x7_service_in_tokyo_writes_tokyo_time(settings, engine, clock):
    data = settings.model_dump(exclude={"source"})
    data["calendars"]["tokyo"] = {"always": True, "zone": "Asia/Tokyo"}
    data["services"]["network"]["calendar"] = "tokyo"
    desk = Desk(settings_from_dict(data, "test", {"MAILPROC_SECRET": "test"}), engine, clock)
    clock.now = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    open_incident(desk, to=NETWORK, subject="Router down")
    text = letters(engine, "new_incident")["servicedesk@example.com"][1]
    assert "opened:   Mar 2, 2026, 9:30\u202fAM +0900" in text
    assert "UTC" not in text


def test_a_reporters_mail_may_declare_the_language_of_the_answers(settings, engine, clock):
    custom = localized(settings, locale={"mail_language": True})
    desk = Desk(custom, engine, clock)
    raw = make_mail(sender="Bob <bob@example.org>", to=NETWORK, subject="Kein Netz")
    raw = raw.replace(b"Subject:", b"Content-Language: de-AT\r\nSubject:", 1)
    assert desk.handle(raw).incident == 1
    subject, _ = letters(engine, "acknowledgment")["bob@example.org"]
    assert subject == "[INC-1] Ihre Meldung ist eingegangen: Kein Netz"
    open_incident(desk, sender=ALICE, to=NETWORK, subject="Other")
