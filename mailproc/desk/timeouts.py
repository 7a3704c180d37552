"""Close incidents left too long in a status with `auto_close_days` (e.g. Resolved, awaiting
the reporter's confirmation): the daemon's `close-timed-out` job, through `Desk.close_timed_out`.

One transaction per incident, its row claimed with SKIP LOCKED, so several daemons share the
work without doing it twice; the close is a decision of the workflow (`close_by_timeout`) and
is written, kept in the SLA state and notified like a command's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.desk.writes import SYSTEM_ACTOR, Writes, view_of
from mailproc.notify.outbox import Outbox
from mailproc.sla.state import SlaBook
from mailproc.store import db
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
