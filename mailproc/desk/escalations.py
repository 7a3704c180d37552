"""The escalation pass: mail each SLA escalation level whose time has come, exactly once.

A pass finds the incidents whose stored `next_escalation_at` has come, through its index, so
it costs time in proportion to them and not to all open incidents. Each is then handled in a
transaction of its own: claim the incident's row (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so an
incident another pass or a mail holds is left to them; SQLite takes its write lock at BEGIN),
check it is still due, recompute its clocks from the history, and for each level due record
the escalation, add an `escalated` event to the history and queue the `escalation` notice
through the outbox; then store the moment of the next level. The escalation row is unique per
incident, target, clock cycle and level: the final guard, on both databases, that two passes
never send one level twice (a clash rolls that incident back). A resolved or closed incident
has stopped clocks, so it is never escalated.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailproc.clock import WallClock, utcnow
from mailproc.config.settings import Settings
from mailproc.desk.folding import Fold, release_stale
from mailproc.desk.writes import SYSTEM_ACTOR
from mailproc.durations import format_duration
from mailproc.notify.outbox import Outbox
from mailproc.sla.clocks import SlaStatus
from mailproc.sla.ladder import Escalation, recipients
from mailproc.sla.state import SlaBook
from mailproc.store import db
from mailproc.store.errors import OUTAGES, store_errors
from mailproc.times import whole_second
from mailproc.vocabulary import EventKind

log = logging.getLogger(__name__)


def run_escalations(settings: Settings, engine: Engine, clock: WallClock = utcnow) -> int:
    """One pass; returns how many escalation levels it sent. For `escalate --once` (cron) and
    the daemon's periodic job. Raises StoreUnavailable when the database cannot be reached."""
    return Escalator(settings, engine, clock).run()


class Escalator:
    """Passes that share one SLA policy and one set of compiled templates (a daemon keeps one)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        clock: WallClock = utcnow,
        book: SlaBook | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.settings, self.engine, self.clock = settings, engine, clock
        self.book = book or SlaBook(settings)
        self.outbox = outbox or Outbox(settings)

    def run(self) -> int:
        with store_errors():
            now = whole_second(self.clock())
            release_stale(self.engine, now)
            fold = Fold(self.settings, self.outbox, secrets.token_hex(8))
            sent = sum(self._incident(number, fold) for number in self._due(now))
            fold.settle(self.engine, whole_second(self.clock()))
            return sent

    def _due(self, now: datetime) -> list[int]:
        query = (
            select(db.Incident.id)
            .where(db.Incident.next_escalation_at <= now)
            .order_by(db.Incident.next_escalation_at, db.Incident.id)
        )
        with Session(self.engine) as session:
            return list(session.scalars(query))

    def _incident(self, number: int, fold: Fold) -> int:
        """One incident in one transaction; a failure costs this incident's turn, not the pass.
        Its mails are held for `fold` to settle once the transaction has committed."""
        mails: list[tuple[list[tuple[str, str]], dict[str, Any]]] = []
        try:
            with Session(self.engine) as session, session.begin():
                now = whole_second(self.clock())
                sent = self._escalate(session, number, now, fold.token, mails)
            for going, item in mails:
                fold.add(going, item)
            return sent
        except IntegrityError:
            log.info("INC-%d: another escalation pass sent this level first", number)
        except OUTAGES:
            raise
        except Exception:
            log.exception("INC-%d: escalation failed; the next pass tries again", number)
        return 0

    def _escalate(
        self,
        session: Session,
        number: int,
        now: datetime,
        token: str,
        mails: list[tuple[list[tuple[str, str]], dict[str, Any]]],
    ) -> int:
        incident = session.scalar(
            select(db.Incident)
            .where(db.Incident.id == number, db.Incident.next_escalation_at <= now)
            .with_for_update(skip_locked=True)
        )
        if incident is None:  # held by someone else, or no longer due
            return 0
        assessment = self.book.assess(session, incident, now)
        for escalation in assessment.plan.due:
            mails.append(self._send(session, incident, escalation, assessment.status, now, token))
        self.book.store(incident, assessment, sent=True)
        return len(assessment.plan.due)

    def _send(
        self,
        session: Session,
        incident: db.Incident,
        escalation: Escalation,
        status: SlaStatus,
        now: datetime,
        token: str,
    ) -> tuple[list[tuple[str, str]], dict[str, Any]]:
        """Record the level (the unique row first: a clash sends nothing), tell the history,
        queue the mails (held for the pass to fold); the mails, and the escalation in words
        for a folded mail."""
        person = self.settings.people.get(incident.assignee) if incident.assignee else None
        service = self.settings.services[incident.service]
        to = recipients(escalation.level, service, person.email if person else None)
        target, level = escalation.target.value, escalation.level.number
        session.add(_record(incident.id, escalation, to, now))
        session.flush()
        due, reason = status.of(escalation.target).due, escalation_reason(escalation)
        session.add(_event(incident.id, escalation, reason, to, due, now))
        going = self.outbox.queue_escalation(
            session,
            incident.id,
            now,
            reason=reason,
            level=level,
            target=target,
            due=due,
            recipients=to,
            trigger=escalation.level.trigger,
            late_by=escalation.late_by,
            hold=token,
        )
        item = {
            "ref": f"INC-{incident.id}",
            "number": incident.id,
            "title": incident.title,
            "service": incident.service,
            "priority": incident.priority,
            "assignee": incident.assignee,
            "level": level,
            "target": target,
            "reason": reason,
            "due": due,
        }
        return going, item


def _record(
    number: int, escalation: Escalation, to: tuple[str, ...], now: datetime
) -> db.Escalation:
    return db.Escalation(
        incident_id=number,
        target=escalation.target.value,
        cycle=escalation.cycle,
        level=escalation.level.number,
        at=now,
        due_at=escalation.due_at,
        recipients=list(to),
    )


def _event(
    number: int,
    escalation: Escalation,
    reason: str,
    to: tuple[str, ...],
    due: datetime | None,
    now: datetime,
) -> db.Event:
    detail = {
        "target": escalation.target.value,
        "cycle": escalation.cycle,
        "level": escalation.level.number,
        "reason": reason,
        "to": list(to),
        "due": due.isoformat() if due else None,
    }
    kind = EventKind.ESCALATED.value
    return db.Event(incident_id=number, at=now, actor=SYSTEM_ACTOR, kind=kind, detail=detail)


def escalation_reason(escalation: Escalation) -> str:
    """How late it is, in business time: '75% of the response time used, 15m left',
    'the resolution target is breached, 2h10m late'."""
    name, late = escalation.target.value, escalation.late_by
    trigger = escalation.level.trigger
    if trigger.percent is not None and late < timedelta(0):
        return f"{trigger} of the {name} time used, {format_duration(-late)} of business time left"
    if late > timedelta(0):
        return f"the {name} target is breached, {format_duration(late)} of business time late"
    return f"the {name} target is breached"


def recompute_due_times(
    settings: Settings, engine: Engine, clock: WallClock = utcnow, batch: int = 500
) -> int:
    """Store every incident's due times afresh from its history: after a change of calendars,
    targets or ladders, and after upgrading from a version that did not store them. Batches of
    incidents in a transaction each; an incident a mail holds is skipped, since that mail
    recomputes it. Returns how many incidents were recomputed."""
    book, done, last = SlaBook(settings), 0, 0
    while True:
        with Session(engine) as session, session.begin():
            rows = session.scalars(
                select(db.Incident)
                .where(db.Incident.closed_at.is_(None), db.Incident.id > last)
                .order_by(db.Incident.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return done
            now = whole_second(clock())
            for incident in rows:
                book.refresh(session, incident, now)
            last, done = rows[-1].id, done + len(rows)
