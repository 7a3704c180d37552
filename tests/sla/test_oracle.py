"""The SLA arithmetic against an oracle: random times across daylight-saving changes (Europe,
the US, Sydney), public holidays, Kathmandu's +05:45, a 24×7 calendar in Tokyo, pauses and
targets in business days — 0 mismatches.

The oracle shares no code with mailproc.calendars or mailproc.sla beyond the holiday tables
(the `holidays` package) and `zoneinfo`. It walks UTC minute by minute and asks of each minute
whether it is working time, by the rules as the documentation states them:
- A working interval of a local day opens at the first instant the wall clock shows its start
  (so a start the clocks skip opens at the jump) and closes at the instant from which the wall
  clock never again shows a time before its end (a repeated end closes at its second
  occurrence). A minute inside any interval of any day counts once.
- Business time from a to b is the number of working minutes in [a, b); a due time is the end
  of the minute in which the target's business time is used up; while paused, minutes do not
  count.
- N business days end with the last interval of the Nth working day; the opening day counts if
  it is a working day and the clock starts before both the day's cut-off (read with fold=0)
  and the end of its working hours.

`MAILPROC_FUZZ_CASES` sets the number of cases per property (default 200, quick in CI).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays
from hypothesis import given
from hypothesis import strategies as st

from mailproc.calendars import Weekday, around_the_clock, make_calendar
from mailproc.durations import BusinessDays
from mailproc.sla.clocks import (
    Created,
    Level,
    Policy,
    ServicePolicy,
    StatusChanged,
    Targets,
    Trigger,
    compute,
)
from mailproc.vocabulary import Priority, StatusKind
from tests.support.fuzzing import fuzz

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
WEEK = list(Weekday)


@dataclass
class Oracle:
    """A calendar as the documentation describes it, evaluated minute by minute."""

    zone: ZoneInfo
    week: dict[int, list[tuple[int, int]]]  # weekday -> (start, end) minutes after midnight
    off: holidays.HolidayBase | None = None
    always: bool = False
    cutoff: int = 12 * 60
    _days: dict[date, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    def wall(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)

    def _offsets(self, wall: datetime) -> list[timedelta]:
        """The zone's UTC offsets within two days of `wall`, sampled hourly."""
        near = (wall - timedelta(days=2)).replace(tzinfo=UTC)
        return [(near + n * HOUR).astimezone(self.zone).utcoffset() for n in range(97)]

    def opens(self, wall: datetime) -> datetime:
        """The first minute at which the wall clock shows `wall` or later. Before
        `wall - max(offset)` the wall clock shows earlier times, so the walk starts there."""
        moment = (wall - max(self._offsets(wall))).replace(tzinfo=UTC)
        while self.wall(moment) < wall:
            moment += MINUTE
        return moment

    def closes(self, wall: datetime) -> datetime:
        """The instant from which the wall clock never again shows a time before `wall`. After
        `wall - min(offset)` it shows later times, so the walk goes back from there."""
        moment = (wall - min(self._offsets(wall))).replace(tzinfo=UTC)
        while self.wall(moment) >= wall:
            moment -= MINUTE
        return moment + MINUTE

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        known = self._days.get(day)
        if known is None:
            hours = [(0, 24 * 60)] if self.always else self.week.get(day.weekday(), [])
            if not self.always and self.off is not None and day in self.off:
                hours = []
            midnight = datetime.combine(day, datetime.min.time())
            known = self._days[day] = [
                (self.opens(midnight + s * MINUTE), self.closes(midnight + e * MINUTE))
                for s, e in hours
            ]
        return known

    def working(self, minute: datetime) -> bool:
        today = minute.astimezone(self.zone).date()
        return any(
            begin <= minute < end
            for day in (today - DAY, today)
            for begin, end in self.intervals(day)
        )

    def between(self, start: datetime, end: datetime) -> timedelta:
        return sum((MINUTE for m in _minutes(start, end) if self.working(m)), timedelta(0))

    def add(self, start: datetime, amount: timedelta, paused: list[tuple[datetime, datetime]]):
        """The end of the minute in which `amount` of running business time is used up."""
        left, minute = amount, start
        while True:
            if self.working(minute) and not any(a <= minute < b for a, b in paused):
                left -= MINUTE
                if left <= timedelta(0):
                    return minute + MINUTE
            minute += MINUTE

    def end_of_working_days(self, start: datetime, count: int) -> datetime:
        day = start.astimezone(self.zone).date()
        spans = self.intervals(day)
        midnight = datetime.combine(day, datetime.min.time())
        cut = (midnight + self.cutoff * MINUTE).replace(tzinfo=self.zone).astimezone(UTC)
        counted = 1 if spans and start < min(cut, max(e for _, e in spans)) else 0
        while counted < count or not spans:
            day += DAY
            spans = self.intervals(day)
            counted += 1 if spans else 0
        return max(e for _, e in spans)


def _minutes(start: datetime, end: datetime):
    minute = start
    while minute < end:
        yield minute
        minute += MINUTE


def _hours(text: str) -> tuple[int, int]:
    a, b = text.split("-")
    return tuple(int(x[:2]) * 60 + int(x[3:]) for x in (a, b))  # type: ignore[return-value]


@dataclass(frozen=True)
class Case:
    name: str
    zone: str
    hours: dict[int, list[str]]
    country: tuple[str, str | None] | None = None
    always: bool = False
    cutoff: str = "12:00"

    @cached_property
    def calendar(self):
        if self.always:
            return around_the_clock(self.name, self.zone, self.cutoff)
        country, subdivision = self.country or (None, None)
        hours = {WEEK[day]: spans for day, spans in self.hours.items()}
        return make_calendar(
            self.name, self.zone, hours, (), country, subdivision, cutoff=self.cutoff
        )

    @cached_property
    def oracle(self) -> Oracle:
        off = (
            holidays.country_holidays(self.country[0], subdiv=self.country[1])
            if self.country
            else None
        )
        week = {day: [_hours(s) for s in spans] for day, spans in self.hours.items()}
        return Oracle(
            ZoneInfo(self.zone), week, off, self.always, _hours(f"{self.cutoff}-00:00")[0]
        )


def _days(days: range | tuple[int, ...], *spans: str) -> dict[int, list[str]]:
    return {day: list(spans) for day in days}


WORKDAYS, ALL_WEEK = range(5), range(7)
CASES = [
    Case("munich", "Europe/Berlin", _days(WORKDAYS, "08:00-12:00", "13:00-17:00"), ("DE", "BY")),
    Case("new-york", "America/New_York", _days(WORKDAYS, "09:00-17:00"), ("US", "NY")),
    # Hours across Sydney's changes at 02:00/03:00, an edge inside the repeated hour.
    Case(
        "sydney",
        "Australia/Sydney",
        _days(ALL_WEEK, "01:30-02:30", "06:00-10:00"),
        ("AU", "NSW"),
        cutoff="02:30",
    ),
    Case("kathmandu", "Asia/Kathmandu", _days((0, 1, 2, 3, 4, 6), "10:00-17:00"), ("NP", None)),
    Case("nights", "Europe/Berlin", _days(ALL_WEEK, "00:00-06:00", "22:00-24:00")),
    Case("tokyo", "Asia/Tokyo", {}, always=True, cutoff="09:00"),
]


def _transitions(zone: str) -> list[datetime]:
    tz, found, moment = ZoneInfo(zone), [], datetime(2026, 1, 1, tzinfo=UTC)
    while moment < datetime(2028, 1, 1, tzinfo=UTC):
        if (moment + HOUR).astimezone(tz).utcoffset() != moment.astimezone(tz).utcoffset():
            found.append(moment + HOUR)
        moment += HOUR
    return found


# Where the edge cases are: the clock changes of the three zones, holidays, ordinary days.
CHANGES = [
    t for z in ("Europe/Berlin", "America/New_York", "Australia/Sydney") for t in _transitions(z)
]
HOLIDAYS = [(1, 1), (4, 3), (7, 3), (12, 24), (10, 2), (3, 25)]
ANCHORS = sorted(
    {*CHANGES, *(datetime(y, m, d, 12, tzinfo=UTC) for y in (2026, 2027) for m, d in HOLIDAYS)}
)
instants = st.builds(
    lambda anchor, minutes: anchor + minutes * MINUTE,
    st.sampled_from(ANCHORS),
    st.integers(-4 * 1440, 4 * 1440),
)
amounts = st.integers(1, 40 * 60).map(lambda n: n * MINUTE)
cases = st.sampled_from(CASES)


@fuzz
@given(cases, instants, amounts)
def test_due_times_match_the_oracle(case, start, amount):
    assert case.calendar.add(start, amount) == case.oracle.add(start, amount, [])


@fuzz
@given(cases, instants, st.integers(0, 6 * 1440).map(lambda n: n * MINUTE))
def test_business_time_between_matches_the_oracle(case, start, span):
    assert case.calendar.between(start, start + span) == case.oracle.between(start, start + span)


@fuzz
@given(cases, instants, st.integers(1, 5))
def test_business_day_deadlines_match_the_oracle(case, start, days):
    assert case.calendar.end_of_working_days(start, days) == case.oracle.end_of_working_days(
        start, days
    )


def _policy(case: Case, resolution) -> Policy:
    levels = (Level(1, Trigger(percent=50), ("team",)), Level(2, Trigger(), ("team",)))
    targets = dict.fromkeys(Priority, Targets(30 * MINUTE, resolution))
    return Policy({"svc": ServicePolicy(case.calendar, targets, levels)})


@fuzz
@given(
    cases,
    instants,
    st.one_of(amounts, st.integers(1, 4).map(BusinessDays)),
    st.lists(st.integers(1, 3 * 1440), max_size=4),
)
def test_due_times_with_pauses_and_day_targets_match_the_oracle(case, start, target, gaps):
    """Pauses (a paused status) toggled at random minutes; the resolution due time, its 50%
    level and the business time elapsed, as computed by the SLA core and by the oracle."""
    toggles = [start]
    for gap in gaps[: len(gaps) // 2 * 2]:
        toggles.append(toggles[-1] + gap * MINUTE)
    timeline = [Created(start, "svc", Priority.P3)]
    for n, at in enumerate(toggles[1:]):
        paused = n % 2 == 0
        timeline.append(StatusChanged(at, "Waiting" if paused else "Open", StatusKind.OPEN, paused))
    now = toggles[-1]
    status = compute(timeline, _policy(case, target), now).resolution
    oracle = case.oracle
    if isinstance(target, BusinessDays):
        goal = oracle.between(start, oracle.end_of_working_days(start, target.count))
    else:
        goal = target
    paused = list(zip(toggles[1::2], toggles[2::2], strict=True))
    assert status.goal == goal
    assert status.elapsed == oracle.between(start, now) - sum(
        (oracle.between(a, b) for a, b in paused), timedelta(0)
    )
    assert status.due == oracle.add(start, goal, paused)
    half = goal / 2  # the level at 50%, where the oracle's minutes can tell
    if half % MINUTE == timedelta(0):
        assert status.clock.moment(Trigger(percent=50).threshold(goal)) == oracle.add(
            start, half, paused
        )
