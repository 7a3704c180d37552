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
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.sla.clocks import Level, Phase, Standing, Step, TargetStatus, local_time
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


@dataclass(frozen=True, slots=True)
class LevelFate:
    """One escalation level of a target: when it falls due and what became of it. `fate` is
    one of sent, acknowledged, clock stopped, paused, due, pending (for scripts); `reason`
    says it in words, with times in the target's calendar zone."""

    level: int
    trigger: str
    due: datetime | None  # None: not reached (the clock stopped or is paused before it)
    fate: str
    reason: str
    sent_at: datetime | None
    recipients: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TargetExplanation:
    target: SlaTarget
    cycle: int
    goal: str  # as `describe()` gives it: '4h', or '3bd (end of working day 3, …)'
    zone: str
    due: datetime | None
    standing: Standing
    steps: tuple[Step, ...]
    escalations: tuple[LevelFate, ...]


@dataclass(frozen=True, slots=True)
class Explanation:
    """`sla explain` as data: `--json` prints it, `explanation_text` writes it for people."""

    number: int
    title: str
    service: str
    priority: str
    status: str
    at: datetime
    targets: tuple[TargetExplanation, ...]

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


def explain(engine: Engine, book: SlaBook, number: int, now: datetime) -> Explanation:
    """How each due time of INC-`number` was computed, step by step, and its escalations."""
    with Session(engine) as session:
        incident = session.get(db.Incident, number)
        if incident is None:
            raise UnknownIncident(f"no incident INC-{number}")
        status = book.assess(session, incident, now, explain=True).status
        sent = _sent(session, number)
        title, state = incident.title, incident.status
    ladder = book.policy.of(status.service).ladder
    acks = status.acknowledged
    return Explanation(
        number,
        title,
        status.service,
        str(status.priority),
        state,
        now,
        tuple(_target(t, ladder, sent, acks, now) for t in status.targets),
    )


def explanation_text(explained: Explanation) -> str:
    head = [
        f"{explained.ref}  {explained.title}",
        f"service {explained.service}, priority {explained.priority}, "
        f"status {explained.status}; now {local_time(explained.at, UTC)}",
    ]
    return "\n\n".join(["\n".join(head), *map(_target_text, explained.targets)])


def _sent(session: Session, number: int) -> dict[tuple[str, int, int], _SentLevel]:
    rows = session.scalars(select(db.Escalation).where(db.Escalation.incident_id == number))
    return {(r.target, r.cycle, r.level): _SentLevel(r.at, tuple(r.recipients)) for r in rows}


def _target(
    target: TargetStatus,
    ladder: tuple[Level, ...],
    sent: dict[tuple[str, int, int], _SentLevel],
    acks: tuple[datetime, ...],
    now: datetime,
) -> TargetExplanation:
    zone = target.clock.calendar.zone
    mine = {lv: s for (t, c, lv), s in sent.items() if (t, c) == (target.target, target.cycle)}
    stopped = acknowledged({lv: s.at for lv, s in mine.items()}, acks)
    levels = tuple(
        _level(level, moment, target, mine.get(level.number), stopped, now, zone)
        for level, moment in level_moments(target, ladder)
    )
    return TargetExplanation(
        target.target,
        target.cycle,
        target.describe(),
        str(zone),
        target.due,
        target.standing,
        target.steps,
        levels,
    )


def _target_text(target: TargetExplanation) -> str:
    zone = ZoneInfo(target.zone)
    lines = [f"{target.target} (cycle {target.cycle}): target {target.goal}"]
    lines += [f"  {local_time(step.at, zone)}  {step.text}" for step in target.steps]
    if target.escalations:
        lines.append("  escalations:")
    for level in target.escalations:
        when = local_time(level.due, zone) if level.due else "(not reached)"
        lines.append(f"    level {level.level} at {level.trigger:<14} {when}: {level.reason}")
    return "\n".join(lines)


def _level(
    level: Level,
    moment: datetime | None,
    target: TargetStatus,
    sent: _SentLevel | None,
    stopped: bool,
    now: datetime,
    zone: tzinfo,
) -> LevelFate:
    def fate(name: str, reason: str) -> LevelFate:
        at, to = (sent.at, sent.recipients) if sent else (None, ())
        return LevelFate(level.number, str(level.trigger), moment, name, reason, at, to)

    if sent is not None:
        to = ", ".join(sent.recipients) or "nobody"
        return fate("sent", f"sent {local_time(sent.at, zone)} to {to}")
    if stopped:
        return fate("acknowledged", "not sent: the ladder was acknowledged")
    if target.phase is Phase.STOPPED:
        return fate("clock stopped", "not sent: the clock stopped first")
    if moment is None:
        return fate("paused", "waits: the clock is paused")
    if moment <= now:
        return fate("due", "due now: the next escalation pass sends it")
    return fate("pending", "pending")
