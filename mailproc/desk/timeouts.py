"""Incidents left too long in one status: remind the reporter once after `remind_days` (e.g.
Waiting, for the reporter's answer), close after `auto_close_days` (Waiting, or Resolved
awaiting the reporter's confirmation): the daemon's `close-timed-out` job, through
`Desk.close_timed_out`.

One transaction per incident, its row claimed with SKIP LOCKED, so several daemons share the
work without doing it twice; the close is a decision of the workflow (`close_by_timeout`) and
is written, kept in the SLA state and notified like a command's. A reminder is a `reminded`
event that changes nothing else (not even the incident's `updated_at`, which the close counts
from), so it goes out once per wait: the next one would need a change first.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, Select, exists, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.desk.writes import SYSTEM_ACTOR, Writes, view_of
from mailproc.notify.outbox import Outbox
from mailproc.sla.state import SlaBook
from mailproc.store import db
from mailproc.vocabulary import EventKind
from mailproc.workflow.decision import Actor, close_by_timeout

Act = Callable[[Session, db.Incident], bool]  # done with the incident (False: stop here)


def close_timed_out(
    settings: Settings, engine: Engine, now: datetime, outbox: Outbox, book: SlaBook
) -> list[int]:
    """The numbers of the incidents closed, in the order they were."""

    def close(session: Session, incident: db.Incident) -> bool:
        decision = close_by_timeout(view_of(session, incident), settings)
        if not decision.events:
            return False
        writes = Writes(settings, session, None, Actor(SYSTEM_ACTOR), now, None, outbox, book)
        writes.commit_decision(incident, decision)
        writes.keep_sla(incident)
        writes.notify(incident)
        writes.write()
        return True

    return _sweep(settings, engine, now, "auto_close_days", close)


def remind_reporters(
    settings: Settings, engine: Engine, now: datetime, outbox: Outbox
) -> list[int]:
    """Remind the reporters of incidents waiting longer than their status's `remind_days`
    (and not reminded since the incident last changed); the numbers of those reminded."""

    def remind(session: Session, incident: db.Incident) -> bool:
        days = settings.workflow_of(incident.service).status(incident.status).auto_close_days
        closes = incident.updated_at + timedelta(days=days) if days is not None else None
        detail = {"to": incident.reporter, "closes": closes.isoformat() if closes else None}
        kind = EventKind.REMINDED.value
        session.add(
            db.Event(incident_id=incident.id, at=now, actor=SYSTEM_ACTOR, kind=kind, detail=detail)
        )
        outbox.queue_reminder(session, incident, now, closes)
        return True

    reminded = exists().where(
        db.Event.incident_id == db.Incident.id,
        db.Event.kind == EventKind.REMINDED.value,
        db.Event.at >= db.Incident.updated_at,
    )
    return _sweep(settings, engine, now, "remind_days", remind, ~reminded)


def _sweep(
    settings: Settings,
    engine: Engine,
    now: datetime,
    days: str,
    act: Act,
    *unless: ColumnElement[bool],
) -> list[int]:
    """Act on each incident left in a status longer than that status's `days` (a field of
    the status configuration), one transaction each; the numbers acted on, in order."""
    done = []
    for service, status, count in _statuses_with(settings, days):
        cutoff = now - timedelta(days=count)
        query = (
            select(db.Incident)
            .where(
                db.Incident.service == service,
                db.Incident.status == status,
                db.Incident.updated_at <= cutoff,
                *unless,
            )
            .order_by(db.Incident.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        while (number := _one(engine, query, act)) is not None:
            done.append(number)
    return done


def _one(engine: Engine, query: Select[db.Incident], act: Act) -> int | None:
    with Session(engine) as session, session.begin():
        incident = session.scalar(query)
        if incident is None or not act(session, incident):
            return None
        return incident.id


def _statuses_with(settings: Settings, days: str) -> list[tuple[str, str, float]]:
    """(service, status, its number of days) for each status that sets `days`."""
    found = []
    for service, config in sorted(settings.services.items()):
        for status in settings.workflows[config.workflow].statuses:
            value = getattr(status, days)
            if value is not None:
                found.append((service, status.name, float(value)))
    return found
