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

from datetime import datetime, timedelta

from sqlalchemy import Engine, exists, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.desk.writes import SYSTEM_ACTOR, Writes, view_of
from mailproc.notify.outbox import Outbox
from mailproc.sla.state import SlaBook
from mailproc.store import db
from mailproc.vocabulary import EventKind
from mailproc.workflow.decision import Actor, close_by_timeout


def close_timed_out(
    settings: Settings, engine: Engine, now: datetime, outbox: Outbox, book: SlaBook
) -> list[int]:
    """The numbers of the incidents closed, in the order they were."""
    closed = []
    for service, status, days in _timed_statuses(settings):
        cutoff = now - timedelta(days=days)
        where = (service, status, cutoff)
        while (number := _close_one(settings, engine, where, now, outbox, book)) is not None:
            closed.append(number)
    return closed


def _close_one(
    settings: Settings,
    engine: Engine,
    where: tuple[str, str, datetime],
    now: datetime,
    outbox: Outbox,
    book: SlaBook,
) -> int | None:
    service, status, cutoff = where
    with Session(engine) as session, session.begin():
        incident = session.scalar(
            select(db.Incident)
            .where(
                db.Incident.service == service,
                db.Incident.status == status,
                db.Incident.updated_at <= cutoff,
            )
            .order_by(db.Incident.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if incident is None:
            return None
        decision = close_by_timeout(view_of(session, incident), settings)
        if not decision.events:
            return None
        writes = Writes(settings, session, None, Actor(SYSTEM_ACTOR), now, None, outbox, book)
        writes.commit_decision(incident, decision)
        writes.keep_sla(incident)
        writes.notify(incident)
        writes.write()
        return incident.id


def _timed_statuses(settings: Settings) -> list[tuple[str, str, float]]:
    return [
        (service, status.name, status.auto_close_days)
        for service, config in sorted(settings.services.items())
        for status in settings.workflows[config.workflow].statuses
        if status.auto_close_days is not None
    ]


def remind_waiting(settings: Settings, engine: Engine, now: datetime, outbox: Outbox) -> list[int]:
    """Remind the reporters of incidents waiting longer than their status's `remind_days`
    (and not reminded since the incident last changed); the numbers of those reminded."""
    reminded = []
    for service, status in _waiting_statuses(settings):
        config = settings.workflow_of(service).status(status)
        assert config.remind_days is not None
        cutoff = now - timedelta(days=config.remind_days)
        where = (service, status, cutoff)
        while (number := _remind_one(settings, engine, where, now, outbox)) is not None:
            reminded.append(number)
    return reminded


def _remind_one(
    settings: Settings,
    engine: Engine,
    where: tuple[str, str, datetime],
    now: datetime,
    outbox: Outbox,
) -> int | None:
    service, status, cutoff = where
    since = exists().where(
        db.Event.incident_id == db.Incident.id,
        db.Event.kind == EventKind.REMINDED.value,
        db.Event.at >= db.Incident.updated_at,
    )
    with Session(engine) as session, session.begin():
        incident = session.scalar(
            select(db.Incident)
            .where(
                db.Incident.service == service,
                db.Incident.status == status,
                db.Incident.updated_at <= cutoff,
                ~since,
            )
            .order_by(db.Incident.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if incident is None:
            return None
        days = settings.workflow_of(service).status(status).auto_close_days
        closes = incident.updated_at + timedelta(days=days) if days is not None else None
        detail = {"to": incident.reporter, "closes": closes.isoformat() if closes else None}
        session.add(
            db.Event(
                incident_id=incident.id,
                at=now,
                actor=SYSTEM_ACTOR,
                kind=EventKind.REMINDED.value,
                detail=detail,
            )
        )
        outbox.queue_reminder(session, incident, now, closes)
        return incident.id


def _waiting_statuses(settings: Settings) -> list[tuple[str, str]]:
    return [
        (service, status.name)
        for service, config in sorted(settings.services.items())
        for status in settings.workflows[config.workflow].statuses
        if status.remind_days is not None
    ]
