"""What `sla report` and `sla explain` show: the stored due times of the open incidents, and
how one incident's due times and escalations were computed.

The report reads the stored columns only (mailproc.sla.state keeps them), so it costs one query
whatever the calendars; the explanation recomputes one incident from its history, with the
steps the core records on request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.sla.clocks import Level, Phase, TargetStatus, local_time
from mailproc.sla.ladder import acknowledged, level_moments
from mailproc.sla.state import SlaBook
from mailproc.sla.timeline import status_meaning
from mailproc.store import db
from mailproc.store.queries import UnknownIncident
from mailproc.vocabulary import SlaTarget, StatusKind

BREACHED, AT_RISK, ON_TRACK, PAUSED = "breached", "at risk", "on track", "paused"
_ORDER = {BREACHED: 0, AT_RISK: 1, ON_TRACK: 2, PAUSED: 3}


@dataclass(frozen=True, slots=True)
class SlaLine:
    """One open incident in `sla report`: its stored due times and where it stands at `now`."""

    number: int
    service: str
    priority: str
    status: str
    assignee: str | None
    title: str
    standing: str  # breached, at risk, on track, or paused (no clock running)
    breached: tuple[str, ...]  # the targets whose due time has passed
    response_due: datetime | None  # None: responded
    resolution_due: datetime | None  # None: paused
    at_risk_at: datetime | None
    next_escalation_at: datetime | None

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


def sla_lines(engine: Engine, settings: Settings, now: datetime) -> list[SlaLine]:
    """The open incidents (status of kind open), breached first, then at risk, each group by
    the earliest due time."""
    with Session(engine) as session:
        return open_lines(session, settings, now)


def open_lines(
    session: Session, settings: Settings, now: datetime, *where: ColumnElement[bool]
) -> list[SlaLine]:
    """`sla_lines` of the open incidents that also meet `where`, in the caller's session."""
    i = db.Incident
    columns = (i.id, i.service, i.status, i.priority, i.assignee, i.title, *_STORED)
    query = select(*columns).where(i.closed_at.is_(None), *where).order_by(i.id)
    rows = session.execute(query).yield_per(1000)
    lines = [_line(row, now) for row in rows if _open(row, settings)]
    return sorted(lines, key=lambda line: (_ORDER[line.standing], _soonest(line), line.number))


_STORED = (
    db.Incident.response_due,
    db.Incident.resolution_due,
    db.Incident.at_risk_at,
    db.Incident.next_escalation_at,
)


def _open(row: Any, settings: Settings) -> bool:
    return status_meaning(settings, row.service, row.status)[0] is StatusKind.OPEN


def _line(row: Any, now: datetime) -> SlaLine:  # a row of the query above
    dues = {SlaTarget.RESPONSE: row.response_due, SlaTarget.RESOLUTION: row.resolution_due}
    breached = tuple(t.value for t, due in dues.items() if due is not None and due <= now)
    if breached:
        standing = BREACHED
    elif row.at_risk_at is not None and row.at_risk_at <= now:
        standing = AT_RISK
    else:
        standing = PAUSED if all(due is None for due in dues.values()) else ON_TRACK
    return SlaLine(
        row.id,
        row.service,
        row.priority,
        row.status,
        row.assignee,
        row.title,
        standing,
        breached,
        row.response_due,
        row.resolution_due,
        row.at_risk_at,
        row.next_escalation_at,
    )


def _soonest(line: SlaLine) -> datetime:
    dues = [d for d in (line.response_due, line.resolution_due) if d is not None]
    return min(dues, default=datetime.max.replace(tzinfo=UTC))


def report_table(lines: list[SlaLine], now: datetime) -> str:
    counts = {s: sum(1 for line in lines if line.standing == s) for s in (BREACHED, AT_RISK)}
    head = (
        f"{len(lines)} open incident(s) at {_utc(now)}: {counts[BREACHED]} breached, "
        f"{counts[AT_RISK]} at risk (times in UTC)"
    )
    columns = f"{'REF':<9} {'SERVICE':<10} {'PRIO':<4} {'STATUS':<10} {'STANDING':<9} "
    columns += f"{'RESPONSE DUE':<17} {'RESOLUTION DUE':<17} {'NEXT ESCALATION':<17} TITLE"
    rows = [
        f"{line.ref:<9} {line.service:<10} {line.priority:<4} {line.status:<10} "
        f"{line.standing:<9} {_utc(line.response_due, 'responded'):<17} "
        f"{_utc(line.resolution_due, 'paused'):<17} {_utc(line.next_escalation_at, '-'):<17} "
        f"{line.title}"
        for line in lines
    ]
    return "\n".join([head, columns, *rows])


def _utc(moment: datetime | None, missing: str = "") -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else missing


# --- sla explain ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SentLevel:
    at: datetime
    recipients: tuple[str, ...]


def explain(engine: Engine, book: SlaBook, number: int, now: datetime) -> str:
    """How each due time of INC-`number` was computed, step by step, and its escalations."""
    with Session(engine) as session:
        incident = session.get(db.Incident, number)
        if incident is None:
            raise UnknownIncident(f"no incident INC-{number}")
        status = book.assess(session, incident, now, explain=True).status
        sent = _sent(session, number)
        head = [
            f"INC-{number}  {incident.title}",
            f"service {status.service}, priority {status.priority}, status {incident.status}; "
            f"now {local_time(now, UTC)}",
        ]
    ladder = book.policy.of(status.service).ladder
    acks = status.acknowledged
    blocks = [_target_text(t, ladder, sent, acks, now) for t in status.targets]
    return "\n\n".join(["\n".join(head), *blocks])


def _sent(session: Session, number: int) -> dict[tuple[str, int, int], _SentLevel]:
    rows = session.scalars(select(db.Escalation).where(db.Escalation.incident_id == number))
    return {(r.target, r.cycle, r.level): _SentLevel(r.at, tuple(r.recipients)) for r in rows}


def _target_text(
    target: TargetStatus,
    ladder: tuple[Level, ...],
    sent: dict[tuple[str, int, int], _SentLevel],
    acks: tuple[datetime, ...],
    now: datetime,
) -> str:
    zone = target.clock.calendar.zone
    lines = [f"{target.target} (cycle {target.cycle}): target {target.describe()}"]
    lines += [f"  {local_time(step.at, zone)}  {step.text}" for step in target.steps]
    mine = {lv: s for (t, c, lv), s in sent.items() if (t, c) == (target.target, target.cycle)}
    stopped = acknowledged({lv: s.at for lv, s in mine.items()}, acks)
    levels = level_moments(target, ladder)
    if levels:
        lines.append("  escalations:")
    for level, moment in levels:
        when = local_time(moment, zone) if moment else "(not reached)"
        fate = _fate(target, mine.get(level.number), moment, stopped, now, zone)
        lines.append(f"    level {level.number} at {level.trigger!s:<14} {when}: {fate}")
    return "\n".join(lines)


def _fate(
    target: TargetStatus,
    sent: _SentLevel | None,
    moment: datetime | None,
    stopped: bool,
    now: datetime,
    zone: tzinfo,
) -> str:
    if sent is not None:
        return f"sent {local_time(sent.at, zone)} to {', '.join(sent.recipients) or 'nobody'}"
    if stopped:
        return "not sent: the ladder was acknowledged"
    if target.phase is Phase.STOPPED:
        return "not sent: the clock stopped first"
    if moment is None:
        return "waits: the clock is paused"
    return "due now: the next escalation pass sends it" if moment <= now else "pending"
