"""The escalation ladder: which levels are due now, and when the next one will be.

Pure: the SLA status (sla.compute), the service's ladder, the levels already sent and `now`
go in; the escalations to send now and the instant the next level becomes due come out, so
the service layer can keep that instant in an indexed column and a pass only looks at the
incidents whose time has come.

The rules:
- A level fires when its target's clock reaches the level's threshold (a percentage of the
  target, or the target plus a business time after the breach) — once per incident, target and
  clock cycle (a reopen starts a new resolution cycle). Levels not yet sent whose moment has
  passed all fire, in order, e.g. after a priority change made the incident late at once.
- A stopped clock (responded; resolved or closed) escalates nothing, so a resolved or closed
  incident is never escalated. A paused clock sends nothing new until it runs again.
- An acknowledgment (an [ACK] from a recipient or a solver's real action) at or after the
  first escalation of a target's cycle stops that ladder: no further level is sent.
- Sent levels are never sent again, even when a recomputation moves the due time later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailproc.config.settings import ServiceConfig
from mailproc.sla.clocks import Level, Phase, SlaStatus, TargetStatus
from mailproc.vocabulary import EscalationRole, SlaTarget


@dataclass(frozen=True, slots=True)
class Sent:
    """A level already mailed for one target's cycle (the service layer's record)."""

    target: SlaTarget
    cycle: int
    level: int
    at: datetime


@dataclass(frozen=True, slots=True)
class Escalation:
    target: SlaTarget
    cycle: int
    level: Level
    due_at: datetime  # when the level's threshold was reached
    late_by: timedelta  # business time past the target's due time at `now` (negative: before)

    @property
    def key(self) -> tuple[SlaTarget, int, int]:
        return (self.target, self.cycle, self.level.number)


@dataclass(frozen=True, slots=True)
class LadderPlan:
    due: tuple[Escalation, ...]
    next_at: datetime | None  # the next level's moment once `due` are sent; None: nothing ahead


def plan(
    status: SlaStatus, ladder: Sequence[Level], sent: Iterable[Sent], now: datetime
) -> LadderPlan:
    """The escalations due at `now` and the moment of the next one."""
    sent_at: dict[tuple[SlaTarget, int], dict[int, datetime]] = {}
    for record in sent:
        sent_at.setdefault((record.target, record.cycle), {})[record.level] = record.at
    due: list[Escalation] = []
    upcoming: list[datetime] = []
    for target in status.targets:
        done = sent_at.get((target.target, target.cycle), {})
        if target.phase is Phase.STOPPED or acknowledged(done, status.acknowledged):
            continue
        waiting = [level for level in ladder if level.number not in done]
        for level, moment in level_moments(target, waiting):
            if moment is None:
                continue
            if moment <= now:
                due.append(_escalation(target, level, moment, now))
            else:
                upcoming.append(moment)
    return LadderPlan(tuple(due), min(upcoming, default=None))


def level_moments(
    target: TargetStatus, ladder: Sequence[Level]
) -> list[tuple[Level, datetime | None]]:
    """Each level for this target with the instant its threshold is (or was) reached; None
    while the clock is paused or stopped short of it. Also what `sla what-if` prints."""
    return [
        (level, target.clock.moment(level.trigger.threshold(target.goal)))
        for level in ladder
        if target.target in level.targets
    ]


def recipients(level: Level, service: ServiceConfig, assignee: str | None) -> tuple[str, ...]:
    """Roles turned into addresses (assignee: the assignee's address, if any), in order,
    without duplicates; a role with nobody behind it is left out."""
    by_role = {
        EscalationRole.ASSIGNEE: assignee,
        EscalationRole.FIRST_LINE: service.first_line,
        EscalationRole.TEAM: service.team,
    }
    found: list[str] = []
    for name in level.recipients:
        address = by_role[EscalationRole(name)] if name in by_role else name
        if address and address not in found:
            found.append(address)
    return tuple(found)


def acknowledged(done: Mapping[int, datetime], acks: Sequence[datetime]) -> bool:
    """Whether a ladder with these levels sent (number -> when) was acknowledged since its
    first escalation."""
    if not done:
        return False
    first = min(done.values())
    return any(ack >= first for ack in acks)


def _escalation(target: TargetStatus, level: Level, moment: datetime, now: datetime) -> Escalation:
    late_by = target.clock.elapsed(now) - target.goal
    return Escalation(target.target, target.cycle, level, moment, late_by)
