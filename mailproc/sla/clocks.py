"""SLA clocks: an incident's response and resolution due times, from its timeline.

Pure: the timeline (facts with their times), the policy (calendars, targets and ladders per
service, built once from the settings) and `now` go in; per target the due time, the business
time elapsed, met / at risk / breached, and the steps that explain them come out.

The rules, as the README states them:
- Response runs from creation until the incident is assigned or a solver first acts
  (`Responded`), or until it is resolved or closed. It never pauses.
- Resolution runs from creation until a status of kind resolved or closed. A status marked
  `paused` stops it until the incident leaves that status. Entering an open status from a
  resolved or closed one is a reopen: the resolution clock starts again from zero (a new cycle).
- A priority change or a move recomputes the due times: the target of the new priority (and
  service) counted from the clock's start, so business time already elapsed carries over —
  counted in the calendar in force while it elapsed; after a move the clock runs in the new
  service's calendar.
- A stopped clock keeps the target it stopped under; later changes do not judge it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import TYPE_CHECKING

from mailproc.calendars import BusinessCalendar
from mailproc.durations import TargetAmount, format_duration
from mailproc.times import whole_second, whole_seconds
from mailproc.vocabulary import Priority, SlaTarget, StatusKind

if TYPE_CHECKING:
    from mailproc.config.settings import Settings

ZERO = timedelta(0)

# --- the timeline -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Created:
    at: datetime
    service: str
    priority: Priority


@dataclass(frozen=True, slots=True)
class PriorityChanged:
    at: datetime
    priority: Priority


@dataclass(frozen=True, slots=True)
class Moved:
    at: datetime
    service: str


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """The status entered, with what it means to the clocks (from its workflow)."""

    at: datetime
    status: str
    kind: StatusKind
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Responded:
    """The incident was assigned, or a solver acted on it for the first time."""

    at: datetime
    how: str = "assigned"


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """An [ACK] from an escalation's recipient, or any real action of a solver."""

    at: datetime
    by: str = ""


Fact = Created | PriorityChanged | Moved | StatusChanged | Responded | Acknowledged

# --- the policy -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Targets:
    response: TargetAmount
    resolution: TargetAmount

    def of(self, target: SlaTarget) -> TargetAmount:
        return self.response if target is SlaTarget.RESPONSE else self.resolution


def business_time(spec: TargetAmount, calendar: BusinessCalendar, start: datetime) -> timedelta:
    """A target as the business time a clock started at `start` may run: a duration as it
    is; business days as the business time from `start` to the end of the Nth working day.
    From then on both behave alike: a pause pushes the due time by the business time it
    lasted, and a level at 50% fires after half of it."""
    if isinstance(spec, timedelta):
        return spec
    return calendar.between(start, calendar.end_of_working_days(start, spec.count))


def describe_target(spec: TargetAmount, goal: timedelta, calendar: BusinessCalendar) -> str:
    """'4h', or '3bd (end of the 3rd working day, cut-off 12:00: 21h of business time)'."""
    if isinstance(spec, timedelta):
        return format_duration(spec)
    cutoff = f"{calendar.cutoff // 60:02d}:{calendar.cutoff % 60:02d}"
    return (
        f"{spec} (end of working day {spec.count}, the opening day counting before {cutoff}: "
        f"{format_duration(goal)} of business time)"
    )


@dataclass(frozen=True, slots=True)
class Trigger:
    """When a level fires: at a percentage of the target, or a business time after the breach.
    Either way a threshold of the clock's business time, so pauses delay it too."""

    percent: float | None = None
    after_breach: timedelta = ZERO

    def threshold(self, goal: timedelta) -> timedelta:
        if self.percent is not None:
            return share(goal, self.percent)
        return goal + self.after_breach

    def __str__(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}%"
        return f"breach + {format_duration(self.after_breach)}" if self.after_breach else "breach"


@dataclass(frozen=True, slots=True)
class Level:
    """Escalation level `number` (1-based, in ladder order); `recipients` are the roles
    assignee, first_line, team, or addresses."""

    number: int
    trigger: Trigger
    recipients: tuple[str, ...]
    targets: frozenset[SlaTarget] = frozenset(SlaTarget)


@dataclass(frozen=True)
class ServicePolicy:
    calendar: BusinessCalendar
    targets: Mapping[Priority, Targets]
    ladder: tuple[Level, ...]


@dataclass(frozen=True)
class Policy:
    services: Mapping[str, ServicePolicy]
    at_risk_percent: float = 75

    def of(self, service: str) -> ServicePolicy:
        return self.services[service]


def policy_from_settings(settings: Settings) -> Policy:
    """Build once per process: it constructs the calendars (and their holiday tables)."""
    zone = settings.locale.zone
    store = settings.holiday_store()
    built = {name: cal.build(name, zone, store) for name, cal in settings.calendars.items()}
    services = {
        name: ServicePolicy(
            built[settings.calendar_of(name)],
            {p: Targets(t.response, t.resolution) for p, t in settings.targets_of(name).items()},
            tuple(
                Level(n, Trigger(lv.percent, lv.after_breach), lv.to, frozenset(lv.targets))
                for n, lv in enumerate(settings.ladder_of(name), start=1)
            ),
        )
        for name in settings.services
    }
    return Policy(services, settings.sla.at_risk_percent)


# --- clocks and results -----------------------------------------------------------------------


class Phase(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class Standing(StrEnum):
    ON_TRACK = "on track"
    AT_RISK = "at risk"
    BREACHED = "breached"
    MET = "met"


@dataclass(frozen=True, slots=True)
class Stretch:
    """A piece of a clock's life in one calendar, running or paused; `end` None: until now."""

    start: datetime
    end: datetime | None
    calendar: BusinessCalendar
    running: bool


@dataclass(frozen=True)
class Clock:
    """The stretches of one clock cycle; the last one tells whether it runs, pauses or stopped
    (a stopped clock's last stretch has an end)."""

    stretches: tuple[Stretch, ...]

    @property
    def phase(self) -> Phase:
        last = self.stretches[-1]
        if last.end is not None:
            return Phase.STOPPED
        return Phase.RUNNING if last.running else Phase.PAUSED

    @property
    def calendar(self) -> BusinessCalendar:
        return self.stretches[-1].calendar

    def elapsed(self, at: datetime) -> timedelta:
        """Business time the clock has run from its start until `at`."""
        total = ZERO
        for s in self.stretches:
            if s.start >= at:
                break
            if s.running:
                end = at if s.end is None else min(s.end, at)
                total += s.calendar.between(s.start, end)
        return total

    def moment(self, amount: timedelta) -> datetime | None:
        """The instant the clock reaches `amount` of business time: in the past, or ahead if it
        runs now; None when it paused or stopped short of it."""
        done = ZERO
        for s in self.stretches:
            if not s.running:
                continue
            if s.end is None:
                return s.calendar.add(s.start, amount - done)
            span = s.calendar.between(s.start, s.end)
            if done + span >= amount:
                return s.calendar.add(s.start, amount - done)
            done += span
        return None


@dataclass(frozen=True, slots=True)
class Step:
    """One line of `sla explain`: what happened to a clock and what it did to the due time."""

    at: datetime
    text: str


@dataclass(frozen=True)
class TargetStatus:
    target: SlaTarget
    cycle: int  # 1, and one more for each reopen (resolution only)
    goal: timedelta  # the target's business time
    clock: Clock
    due: datetime | None  # None while paused; for a met target, when it would have been due
    elapsed: timedelta  # business time run, until now or until the clock stopped
    standing: Standing
    stopped_at: datetime | None
    steps: tuple[Step, ...]  # empty unless computed with explain=True
    spec: TargetAmount  # the target as configured ("4h", "3bd"); `goal` is its business time

    @property
    def phase(self) -> Phase:
        return self.clock.phase

    def describe(self) -> str:
        """The target for people: '4h', or '3bd (end of working day 3, …: 21h …)'."""
        return describe_target(self.spec, self.goal, self.clock.calendar)

    @property
    def remaining(self) -> timedelta:
        return self.goal - self.elapsed


@dataclass(frozen=True)
class SlaStatus:
    now: datetime
    service: str
    priority: Priority
    response: TargetStatus
    resolution: TargetStatus
    acknowledged: tuple[datetime, ...] = ()

    @property
    def targets(self) -> tuple[TargetStatus, TargetStatus]:
        return (self.response, self.resolution)

    def of(self, target: SlaTarget) -> TargetStatus:
        return self.response if target is SlaTarget.RESPONSE else self.resolution


# --- the walk ---------------------------------------------------------------------------------


@dataclass
class _Track:
    """One target's clock while the timeline is walked (mutable, private to compute)."""

    target: SlaTarget
    stretches: list[Stretch]
    service: str
    priority: Priority
    cycle: int = 1
    stopped_at: datetime | None = None
    steps: list[Step] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    def switch(self, at: datetime, calendar: BusinessCalendar, running: bool) -> None:
        last = self.stretches[-1]
        self.stretches[-1] = Stretch(last.start, at, last.calendar, last.running)
        self.stretches.append(Stretch(at, None, calendar, running))

    def stop(self, at: datetime) -> None:
        last = self.stretches[-1]
        self.stretches[-1] = Stretch(last.start, at, last.calendar, last.running)
        self.stopped_at = at

    def elapsed(self, at: datetime) -> timedelta:
        return Clock(tuple(self.stretches)).elapsed(at)

    @property
    def calendar(self) -> BusinessCalendar:
        return self.stretches[-1].calendar


def compute(
    timeline: Sequence[Fact], policy: Policy, now: datetime, explain: bool = False
) -> SlaStatus:
    """Due times and standings at `now` from the facts so far, oldest first, `Created` first.
    With `explain`, each target also gets the steps `sla explain` prints (they cost more than
    the computation itself, so the escalation pass goes without)."""
    created = timeline[0]
    if not isinstance(created, Created):
        raise ValueError("a timeline starts with Created")
    walk = _Walk(policy, created, explain)
    for fact in timeline[1:]:
        walk.apply(fact)
    return walk.result(now)


class _Walk:
    def __init__(self, policy: Policy, created: Created, explain: bool) -> None:
        self.policy, self.service, self.priority = policy, created.service, created.priority
        self.kind, self.paused, self.explain = StatusKind.OPEN, False, explain
        self.acks: list[datetime] = []
        calendar = policy.of(created.service).calendar
        self.tracks = {
            t: _Track(t, [Stretch(created.at, None, calendar, True)], self.service, self.priority)
            for t in SlaTarget
        }
        for track in self.tracks.values() if explain else ():
            self._note(
                track,
                created.at,
                f"created in service {self.service} with priority {self.priority}: calendar "
                f"{calendar.description}, target {self._target_text(track)}",
            )

    def _note(self, track: _Track, at: datetime, text: str) -> None:
        track.steps.append(Step(at, text))

    def _spec(self, track: _Track) -> TargetAmount:
        return self.policy.of(track.service).targets[track.priority].of(track.target)

    def _goal(self, track: _Track) -> timedelta:
        """The target of the track's service and priority, counted from the clock's start in
        the calendar it runs in now."""
        return business_time(self._spec(track), track.calendar, track.stretches[0].start)

    def _target_text(self, track: _Track) -> str:
        return describe_target(self._spec(track), self._goal(track), track.calendar)

    def apply(self, fact: Fact) -> None:
        if isinstance(fact, PriorityChanged):
            self._priority(fact)
        elif isinstance(fact, Moved):
            self._move(fact)
        elif isinstance(fact, StatusChanged):
            self._status(fact)
        elif isinstance(fact, Responded):
            self._stop(self.tracks[SlaTarget.RESPONSE], fact.at, f"responded ({fact.how})")
        elif isinstance(fact, Acknowledged):
            self.acks.append(fact.at)
        else:
            raise ValueError(f"a second Created at {fact.at.isoformat()}")

    def _live(self) -> list[_Track]:
        return [t for t in self.tracks.values() if not t.stopped]

    def _priority(self, fact: PriorityChanged) -> None:
        before, self.priority = self.priority, fact.priority
        for track in self._live():
            track.priority = fact.priority
            if not self.explain:
                continue
            goal = self._target_text(track)
            self._note(
                track,
                fact.at,
                f"priority {before} → {fact.priority}: target {goal} counted from the start; "
                f"{format_duration(track.elapsed(fact.at))} already elapsed carries over",
            )

    def _move(self, fact: Moved) -> None:
        before, self.service = self.service, fact.service
        calendar = self.policy.of(fact.service).calendar
        for track in self._live():
            track.service = fact.service
            elapsed = format_duration(track.elapsed(fact.at)) if self.explain else ""
            track.switch(fact.at, calendar, track.stretches[-1].running)
            if not self.explain:
                continue
            self._note(
                track,
                fact.at,
                f"moved {before} → {fact.service}: calendar {calendar.description}, target "
                f"{self._target_text(track)}; {elapsed} elapsed carries over",
            )

    def _status(self, fact: StatusChanged) -> None:
        was_open, now_open = self.kind is StatusKind.OPEN, fact.kind is StatusKind.OPEN
        was_paused, self.kind, self.paused = self.paused, fact.kind, fact.paused and now_open
        resolution = self.tracks[SlaTarget.RESOLUTION]
        if was_open and not now_open:
            self._stop(self.tracks[SlaTarget.RESPONSE], fact.at, f"{fact.kind} ({fact.status})")
            self._stop(resolution, fact.at, f"{fact.kind} ({fact.status})")
        elif now_open and not was_open:
            self._reopen(resolution, fact)
        elif now_open and was_paused != self.paused:
            calendar = self.policy.of(self.service).calendar
            resolution.switch(fact.at, calendar, not self.paused)
            if self.explain:
                verb = "pauses" if self.paused else "runs again"
                self._note(resolution, fact.at, f"status {fact.status}: the clock {verb}")

    def _stop(self, track: _Track, at: datetime, why: str) -> None:
        if track.stopped:
            return
        track.stop(at)
        if self.explain:
            elapsed = format_duration(track.elapsed(at))
            self._note(track, at, f"{why}: the clock stops after {elapsed}")

    def _reopen(self, track: _Track, fact: StatusChanged) -> None:
        calendar = self.policy.of(self.service).calendar
        track.stretches = [Stretch(fact.at, None, calendar, not self.paused)]
        track.cycle += 1
        track.stopped_at = None
        track.service, track.priority = self.service, self.priority
        if not self.explain:
            return
        self._note(
            track,
            fact.at,
            f"reopened ({fact.status}): the clock starts again from zero, cycle {track.cycle}, "
            f"target {self._target_text(track)}",
        )

    def result(self, now: datetime) -> SlaStatus:
        response, resolution = (self._finish(self.tracks[t], now) for t in SlaTarget)
        return SlaStatus(now, self.service, self.priority, response, resolution, tuple(self.acks))

    def _finish(self, track: _Track, now: datetime) -> TargetStatus:
        clock = Clock(tuple(track.stretches))
        goal = self._goal(track)
        due = clock.moment(goal)
        elapsed = clock.elapsed(track.stopped_at or now)
        if due is None and track.stopped_at is not None:  # met: when it would have been due
            due = clock.calendar.add(track.stopped_at, goal - elapsed)
        standing = _standing(clock.phase, due, elapsed, goal, track.stopped_at, now, self.policy)
        steps: tuple[Step, ...] = ()
        if self.explain:
            summary = _summary(clock, due, elapsed, goal, standing, track.stopped_at)
            steps = (*track.steps, Step(now, summary))
        return TargetStatus(
            track.target,
            track.cycle,
            goal,
            clock,
            due,
            elapsed,
            standing,
            track.stopped_at,
            steps,
            self._spec(track),
        )


def _standing(
    phase: Phase,
    due: datetime | None,
    elapsed: timedelta,
    goal: timedelta,
    stopped_at: datetime | None,
    now: datetime,
    policy: Policy,
) -> Standing:
    if phase is Phase.STOPPED:
        late = due is not None and stopped_at is not None and due < stopped_at
        return Standing.BREACHED if late else Standing.MET
    if due is not None and due <= now:
        return Standing.BREACHED
    if elapsed >= share(goal, policy.at_risk_percent):
        return Standing.AT_RISK
    return Standing.ON_TRACK


def _summary(
    clock: Clock,
    due: datetime | None,
    elapsed: timedelta,
    goal: timedelta,
    standing: Standing,
    stopped_at: datetime | None,
) -> str:
    used = f"{format_duration(elapsed)} of {format_duration(goal)} elapsed"
    zone = clock.calendar.zone
    if clock.phase is Phase.PAUSED:
        return f"paused, {used}: no due time while paused — {standing}"
    if clock.phase is Phase.STOPPED:
        assert stopped_at is not None and due is not None
        stop, when = local_time(stopped_at, zone), local_time(due, zone)
        return f"stopped at {stop}, {used}, due {when} — {standing}"
    assert due is not None
    return f"running, {used}, due {local_time(due, zone)} — {standing}"


def share(goal: timedelta, percent: float) -> timedelta:
    """A percentage of a target, rounded up to the whole second (mailproc.times)."""
    return whole_seconds(goal * percent / 100)


def local_time(moment: datetime, zone: tzinfo) -> str:
    """How explanations and the CLI show an instant: wall time and zone abbreviation, with
    seconds when it has any (a fraction, which the desk does not keep, is rounded up)."""
    local = whole_second(moment).astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S %Z" if local.second else "%Y-%m-%d %H:%M %Z")
