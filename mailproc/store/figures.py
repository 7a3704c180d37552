"""The desk's figures in a few aggregate queries: what `status --json` reports and what
`mailproc metrics` exports. Read-only, one short transaction, cost independent of history
length except for the grouped counts (which use the tables' indexes where there are any).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.orm import Session

from mailproc.store import db


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """What the daemon (or poll --once) last recorded about a source in source_state."""

    backlog: int
    last_ok_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True, slots=True)
class ServiceFigures:
    open: int = 0
    at_risk: int = 0
    breached: int = 0


@dataclass(frozen=True)
class Figures:
    now: datetime
    messages: dict[str, int]  # by outcome: processed, quarantined, automatic, pending
    last_received_at: datetime | None
    notices: dict[str, int]  # by status: pending, sent, failed, suppressed
    oldest_due_at: datetime | None  # the pending notice due the longest (not deferred)
    services: dict[str, ServiceFigures]
    open_breakers: list[str]
    sources: dict[str, SourceRecord] = field(default_factory=dict)

    def age(self, then: datetime | None) -> float | None:
        return None if then is None else max((self.now - then).total_seconds(), 0.0)


def figures(engine: Engine, now: datetime) -> Figures:
    with Session(engine) as session:
        messages = dict(
            session.execute(
                select(db.Message.outcome, func.count()).group_by(db.Message.outcome)
            ).all()
        )
        last = session.scalar(select(func.max(db.Message.received_at)))
        notices = dict(
            session.execute(select(db.Outbox.status, func.count()).group_by(db.Outbox.status)).all()
        )
        oldest = session.scalar(
            select(func.min(db.Outbox.next_attempt_at)).where(
                db.Outbox.status == db.PENDING, db.Outbox.next_attempt_at <= now
            )
        )
        breakers = list(
            session.scalars(select(db.Breaker.scope).where(db.Breaker.closed_at.is_(None)))
        )
        sources = {
            row.source: SourceRecord(row.backlog, row.last_ok_at, row.last_error, row.last_error_at)
            for row in session.scalars(select(db.SourceState))
        }
        services = _services(session, now)
    return Figures(now, messages, last, notices, oldest, services, breakers, sources)


def _services(session: Session, now: datetime) -> dict[str, ServiceFigures]:
    incident = db.Incident
    breached = or_(
        and_(incident.response_due.is_not(None), incident.response_due < now),
        and_(incident.resolution_due.is_not(None), incident.resolution_due < now),
    )
    at_risk = and_(incident.at_risk_at <= now, ~breached)
    rows = session.execute(
        select(
            incident.service,
            func.count(),
            func.count().filter(at_risk),
            func.count().filter(breached),
        )
        .where(incident.closed_at.is_(None))
        .group_by(incident.service)
    ).all()
    return {service: ServiceFigures(*counts) for service, *counts in rows}
