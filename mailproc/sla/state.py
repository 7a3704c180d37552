"""Keep each incident's stored SLA state true to its history, inside the caller's transaction.

The due times and the moment of the next escalation are columns of the incident (see
mailproc.store.db), so that `sla report` reads them and the escalation pass finds the incidents
whose time has come through an index, at a cost in proportion to those incidents and not to all open
ones. They change only when the history changes, and every change of the history that can move
them — creation, priority, impact and urgency, a move, a status change, an assignment, a
solver's action, an [ACK], an escalation sent — happens in a transaction of the Desk or of the
escalation pass, which call `SlaBook.refresh` before committing. The computation itself is the
pure core's: the history as a timeline (mailproc.sla.timeline), `sla.compute`, `escalation.plan`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.sla.clocks import (
    Phase,
    Policy,
    SlaStatus,
    TargetStatus,
    compute,
    policy_from_settings,
    share,
)
from mailproc.sla.ladder import LadderPlan, Sent, plan
from mailproc.sla.timeline import Record, timeline
from mailproc.store import db
from mailproc.vocabulary import SlaTarget


@dataclass(frozen=True)
class Assessment:
    """An incident's clocks at `now`, and what its escalation ladders say about them."""

    status: SlaStatus
    plan: LadderPlan


class SlaBook:
    """The SLA policy of a process (calendars with their holiday tables and remembered days,
    built once) and the reads and writes of the stored SLA state."""

    def __init__(self, settings: Settings, policy: Policy | None = None) -> None:
        self.settings = settings
        self.policy = policy or policy_from_settings(settings)

    def assess(
        self,
        session: Session,
        incident: db.Incident,
        now: datetime,
        explain: bool = False,
        new: bool = False,
        records: Sequence[Record] | None = None,
        sent: Sequence[Sent] | None = None,
    ) -> Assessment:
        """`new`: created in this transaction, so nothing has been escalated yet; `records`
        and `sent`: the incident's history and the escalation levels sent, when the caller
        already holds them (mailproc.desk.writes reads each once a mail)."""
        if records is None:
            records = history(session, incident.id)
        facts = timeline(records, self.settings)
        status = compute(facts, self.policy, now, explain)
        ladder = self.policy.of(status.service).ladder
        if new:
            sent = ()
        elif sent is None:
            sent = escalations(session, incident.id).sent
        return Assessment(status, plan(status, ladder, sent, now))

    def refresh(
        self,
        session: Session,
        incident: db.Incident,
        now: datetime,
        new: bool = False,
        records: Sequence[Record] | None = None,
        sent: Sequence[Sent] | None = None,
    ) -> Assessment:
        """Recompute and store; levels that are due now are left for the escalation pass,
        which finds them because next_escalation_at is then at or before now."""
        assessment = self.assess(session, incident, now, new=new, records=records, sent=sent)
        self.store(incident, assessment)
        return assessment

    def store(self, incident: db.Incident, assessment: Assessment, sent: bool = False) -> None:
        """Write the due times; `sent`: the levels due now have just been sent."""
        status, ladder = assessment.status, assessment.plan
        incident.response_due = _running_due(status.response)
        incident.resolution_due = _running_due(status.resolution)
        risks = [self._risk_moment(t) for t in status.targets if t.phase is Phase.RUNNING]
        incident.at_risk_at = min((r for r in risks if r is not None), default=None)
        pending = [] if sent else [e.due_at for e in ladder.due]
        upcoming = [ladder.next_at] if ladder.next_at is not None else []
        incident.next_escalation_at = min(pending + upcoming, default=None)

    def _risk_moment(self, target: TargetStatus) -> datetime | None:
        return target.clock.moment(share(target.goal, self.policy.at_risk_percent))


def _running_due(target: TargetStatus) -> datetime | None:
    return target.due if target.phase is Phase.RUNNING else None


_HISTORY = (
    select(
        db.Event.at,
        db.Event.actor,
        db.Event.kind,
        db.Event.detail,
        db.Event.message_pk,
    )
    .where(db.Event.incident_id == bindparam("incident"))
    .order_by(db.Event.id)
)
_ESCALATIONS = (
    select(
        db.Escalation.target,
        db.Escalation.cycle,
        db.Escalation.level,
        db.Escalation.at,
        db.Escalation.recipients,
    )
    .where(db.Escalation.incident_id == bindparam("incident"))
    .order_by(db.Escalation.id)
)


def history(session: Session, incident_id: int) -> list[Record]:
    rows = db.run(session, _HISTORY, incident=incident_id)
    return [Record(r.at, r.actor, r.kind, r.detail, r.message_pk) for r in rows]


@dataclass(frozen=True, slots=True)
class Escalated:
    """The escalations mailed for one incident, read with one statement: the levels sent (its
    ladders go on from them) and everyone they went to (who may answer with [ACK])."""

    sent: tuple[Sent, ...]
    recipients: frozenset[str]


def escalations(session: Session, incident_id: int) -> Escalated:
    rows = db.run(session, _ESCALATIONS, incident=incident_id).all()
    sent = tuple(Sent(SlaTarget(r.target), r.cycle, r.level, r.at) for r in rows)
    return Escalated(sent, frozenset(address for r in rows for address in r.recipients))
