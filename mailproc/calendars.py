"""Business calendars: when an SLA clock runs, and arithmetic in business time.

Pure (no clock, no I/O): a calendar is a time zone, wall-clock working hours per weekday and
holidays; its functions take and return aware datetimes in UTC. Working hours are local
wall-clock hours, so each local day is turned into UTC intervals on its own: a day on which
the clocks change has the business hours it really has (00:00–24:00 lasts 23 or 25 hours;
08:00–17:00 still lasts 9). A wall time that occurs twice opens an interval at its first
occurrence and closes one at its second; a wall time that does not exist (skipped by the
clocks) is the instant the clocks jump. Arithmetic walks working intervals day by day, never
minute by minute, so adding 40 business hours costs a week of intervals.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import cached_property
from itertools import pairwise
from types import ModuleType
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from holidays import HolidayBase

from mailproc.times import offsets, transition, wall_instant

DAY = timedelta(days=1)
IDLE_LIMIT_DAYS = 3660  # ten years without one working minute: the calendar is broken
MEMO_DAYS = 4096
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})$")

Interval = tuple[datetime, datetime]
Minutes = tuple[int, int]  # start and end of working hours, minutes after local midnight


class Weekday(StrEnum):
    """Configuration keys for the days of the week, Monday first as in date.weekday()."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEK = tuple(Weekday)


class NoBusinessTime(ValueError):
    """The calendar has no working time for years ahead: a configuration fault, not a date."""


def parse_hours(text: str) -> Minutes:
    """'08:00-12:00' -> (480, 720). The end may be 24:00; an interval must not cross midnight
    (write 22:00-24:00 on one day and 00:00-06:00 on the next), because each interval belongs
    to the local day it is listed under."""
    match = _HOURS.match(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not working hours like '08:00-17:00'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if m1 > 59 or m2 > 59 or start >= 24 * 60 or end > 24 * 60:
        raise ValueError(f"'{text}': hours run from 00:00 to 24:00")
    if start >= end:
        raise ValueError(f"'{text}': the end must come after the start (split at 24:00)")
    return start, end


def parse_time(text: str) -> int:
    """'12:00' -> 720: a wall time of day, 00:00 to 24:00, as minutes after midnight."""
    match = _TIME.match(text.strip())
    minutes = int(match[1]) * 60 + int(match[2]) if match and int(match[2]) < 60 else -1
    if not 0 <= minutes <= 24 * 60:
        raise ValueError(f"'{text}' is not a time of day like '12:00' (00:00 to 24:00)")
    return minutes


def day_hours(texts: Sequence[str]) -> tuple[Minutes, ...]:
    """One day's intervals, sorted, refusing overlaps so that no minute counts twice."""
    spans = sorted(parse_hours(t) for t in texts)
    for (_, end), (start, _) in pairwise(spans):
        if start < end:
            raise ValueError(f"working hours overlap: {', '.join(texts)}")
    return tuple(spans)


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone '{name}' (use an IANA name like Europe/Prague)"
        ) from None


class YearStore(Protocol):
    """Where a year of a country's holidays outlives the process (mailproc.config.cached)."""

    def get(self, key: str) -> frozenset[date] | None: ...

    def put(self, key: str, dates: frozenset[date]) -> None: ...


class Holidays:
    """A country's public holidays, worked out one year at a time.

    The `holidays` package costs more to import and fill than storing a mail does, and a
    process per mail (an MTA pipe) or per command paid it each time. So each year's dates,
    once worked out, go to `store` (if given) and the next process reads them from there; the
    package is imported only for a year no process has worked out yet. A year's dates are the
    ones of the package's table filled for that year alone, so they do not depend on which
    years a process happened to look at before.
    """

    def __init__(self, country: str, subdivision: str | None, store: YearStore | None = None):
        self.country = country.upper()
        self.subdivision = subdivision
        self._store = store
        self._years: dict[int, frozenset[date]] = {}

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        dates = self._years.get(day.year)
        if dates is None:
            dates = self._years[day.year] = self._year(day.year)
        return day in dates

    def _year(self, year: int) -> frozenset[date]:
        key = f"{self.country}-{self.subdivision or ''}-{year}"
        if self._store is not None:
            found = self._store.get(key)
            if found is not None:
                return found
        table = country_holidays(self.country, self.subdivision, year)
        dates = frozenset(day for day in table if day.year == year)
        if self._store is not None:
            self._store.put(key, dates)
        return dates


def country_holidays(country: str, subdivision: str | None, year: int | None = None) -> HolidayBase:
    """The public holidays of a country (and subdivision) from the `holidays` package; the table
    fills itself one year at a time as dates are looked up (`year`: filled for that year)."""
    try:
        table: HolidayBase = _one_country_at_a_time().country_holidays(
            country.upper(), subdiv=subdivision, years=year
        )
    except NotImplementedError as exc:
        raise ValueError(f"holidays: {exc}") from None
    return table


def _one_country_at_a_time() -> ModuleType:
    """The `holidays` package, set to load one country's module alone.

    Its `holidays.countries` package imports all of some 250 countries (it costs more than
    storing a mail), while the library's own lazy loader imports `holidays.countries.<name>`
    and each country's module needs only the modules it imports itself. So an empty stand-in
    for that package, which finds the submodules in the real folder, is registered first;
    `holidays.countries.czechia` then loads Czechia and nothing else.
    """
    import holidays

    name = "holidays.countries"
    if name not in sys.modules:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.submodule_search_locations is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
    return holidays


@dataclass(frozen=True, eq=False)
class BusinessCalendar:
    """A named calendar. `week` has seven entries, Monday first; `always` is the 24×7 calendar,
    for which business time is elapsed time."""

    name: str
    zone: ZoneInfo
    week: tuple[tuple[Minutes, ...], ...] = ((),) * 7
    dates_off: frozenset[date] = frozenset()
    country: Holidays | None = None
    always: bool = False
    cutoff: int = 12 * 60  # minutes after local midnight: see end_of_working_days
    _walls: tuple[tuple[tuple[time, int, time, int], ...], ...] = field(init=False, repr=False)
    _days: dict[date, tuple[Interval, ...]] = field(init=False, repr=False, default_factory=dict)
    _sums: dict[tuple[datetime, timedelta], datetime] = field(
        init=False, repr=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise ValueError("a week has seven days")
        if not self.always and not any(self.week):
            raise ValueError(f"calendar {self.name}: no working hours on any day")
        walls = tuple(tuple(_wall(s) + _wall(e) for s, e in hours) for hours in self.week)
        object.__setattr__(self, "_walls", walls)

    def is_holiday(self, day: date) -> bool:
        return day in self.dates_off or (self.country is not None and day in self.country)

    def working_intervals(self, day: date) -> tuple[Interval, ...]:
        """The UTC intervals of one local day's working hours (none on a holiday). Remembered
        per day, because a process computes the same few weeks of days over and over; the
        memo holds a few years of days at most."""
        known = self._days.get(day)
        if known is None:
            if len(self._days) >= MEMO_DAYS:
                self._days.clear()
            known = self._days[day] = self._intervals(day)
        return known

    def _intervals(self, day: date) -> tuple[Interval, ...]:
        if self.always:
            return ((self._instant(day, time(), False), self._instant(day + DAY, time(), True)),)
        walls = self._walls[day.weekday()]
        if not walls or self.is_holiday(day):
            return ()
        spans = [
            (
                self._instant(day + s_days * DAY, s, False),
                self._instant(day + e_days * DAY, e, True),
            )
            for s, s_days, e, e_days in walls
        ]
        return tuple(_merged(spans))

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The earliest instant at which `amount` of business time has passed since `start`: a
        due time. Ends on a working instant or on the end of working hours (Friday 17:00)."""
        start = _utc(start)
        if amount < timedelta(0):
            raise ValueError("business time to add must not be negative")
        if self.always or not amount:
            return start + amount
        known = self._sums.get((start, amount))
        if known is None:  # remembered: the incidents of a backlog start in the same seconds
            if len(self._sums) >= MEMO_DAYS:  # and their targets are the same few amounts
                self._sums.clear()
            known = self._sums[start, amount] = self._added(start, amount)
        return known

    def _added(self, start: datetime, amount: timedelta) -> datetime:
        remaining = amount
        for begin, end in self._stretches(start):
            if remaining <= end - begin:
                return begin + remaining
            remaining -= end - begin
        raise AssertionError("unreachable: _stretches never ends")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from start to end; negative when end comes first."""
        start, end = _utc(start), _utc(end)
        if end < start:
            return -self.between(end, start)
        if self.always:
            return end - start
        total = timedelta(0)
        for begin, stop in self._stretches(start):
            if begin >= end:
                break
            total += min(stop, end) - begin
        return total

    def end_of_working_days(self, start: datetime, days: int) -> datetime:
        """The deadline of a target of `days` business days from `start`: the end of the
        days-th working day (the end of its last working interval). The day of `start` is the
        first if it is a working day and `start` comes before its cut-off and before its
        working hours end; otherwise the next working day is. A day's cut-off that falls into
        a gap or fold of the clocks is read by the fold=0 rule (mailproc.times)."""
        start = _utc(start)
        day = start.astimezone(self.zone).date()
        counted, idle = 0, 0
        spans = self.working_intervals(day)
        if spans and start < min(spans[-1][1], self._cutoff_instant(day)):
            counted = 1
            if counted == days:
                return spans[-1][1]
        while idle < IDLE_LIMIT_DAYS:
            day += DAY
            spans = self.working_intervals(day)
            idle = 0 if spans else idle + 1
            counted += 1 if spans else 0
            if spans and counted == days:
                return spans[-1][1]
        raise NoBusinessTime(f"calendar {self.name}: no working time for {IDLE_LIMIT_DAYS} days")

    def _cutoff_instant(self, day: date) -> datetime:
        wall, days = _wall(self.cutoff)
        return wall_instant(datetime.combine(day + days * DAY, wall), self.zone)

    def next_business_instant(self, at: datetime) -> datetime:
        """`at` itself during working hours, else the start of the next working interval."""
        at = _utc(at)
        return at if self.always else next(self._stretches(at))[0]

    @cached_property
    def description(self) -> str:
        """For explanations: 'office (Europe/Prague; Mon–Fri 08:00–17:00; …; holidays CZ)'."""
        if self.always:
            return f"{self.name} ({self.zone}; 24×7)"
        parts = [str(self.zone), *_week_text(self.week)]
        off = [self.country_label()] if self.country is not None else []
        if self.dates_off:
            off.append(f"{len(self.dates_off)} listed date(s)")
        if off:
            parts.append("holidays " + " + ".join(off))
        return f"{self.name} ({'; '.join(parts)})"

    def country_label(self) -> str:
        country = self.country
        if country is None:
            return ""
        return (
            f"{country.country}-{country.subdivision}" if country.subdivision else country.country
        )

    def _stretches(self, start: datetime) -> Iterator[Interval]:
        """Working intervals from `start` on, in order, clipped to begin at or after `start`
        and after the previous one ended (a fold at midnight must not count twice)."""
        day, cursor, idle = start.astimezone(self.zone).date(), start, 0
        while idle < IDLE_LIMIT_DAYS:
            found = False
            for begin, end in self.working_intervals(day):
                begin = max(begin, cursor)
                if begin < end:
                    found, cursor = True, end
                    yield begin, end
            idle = 0 if found else idle + 1
            day += DAY
        raise NoBusinessTime(f"calendar {self.name}: no working time for {IDLE_LIMIT_DAYS} days")

    def _instant(self, day: date, wall: time, closing: bool) -> datetime:
        """A local wall time as a UTC instant: a repeated time is its first occurrence when it
        opens an interval and its second when it closes one; a skipped time is the jump."""
        local = datetime.combine(day, wall)
        before, after = offsets(local, self.zone)
        if before == after:
            return (local - before).replace(tzinfo=UTC)
        if before > after:  # the clocks went back: this wall time happens twice
            return (local - (after if closing else before)).replace(tzinfo=UTC)
        low, high = (local - after).replace(tzinfo=UTC), (local - before).replace(tzinfo=UTC)
        return transition(low, high, self.zone)


def around_the_clock(
    name: str = "24x7", zone: str = "UTC", cutoff: str = "12:00"
) -> BusinessCalendar:
    """Every hour counts; the zone still says where a day (and a business day) begins and
    in which time the calendar's explanations are shown."""
    return BusinessCalendar(name, zone_named(zone), always=True, cutoff=parse_time(cutoff))


def make_calendar(
    name: str,
    zone: str,
    hours: Mapping[Weekday, Sequence[str]],
    dates_off: Iterable[date] = (),
    country: str | None = None,
    subdivision: str | None = None,
    cutoff: str = "12:00",
    store: YearStore | None = None,
) -> BusinessCalendar:
    """A calendar from configuration values; ValueError names what is wrong."""
    week = tuple(day_hours(hours.get(day, ())) for day in WEEK)
    table = Holidays(country, subdivision, store) if country else None
    return BusinessCalendar(
        name, zone_named(zone), week, frozenset(dates_off), table, cutoff=parse_time(cutoff)
    )


def _wall(minutes: int) -> tuple[time, int]:
    """Minutes after midnight as a wall time and a day offset (24:00 is next day's 00:00)."""
    days, rest = divmod(minutes, 24 * 60)
    return time(rest // 60, rest % 60), days


def _merged(spans: list[Interval]) -> Iterator[Interval]:
    current: Interval | None = None
    for begin, end in sorted(spans):
        if begin >= end:
            continue  # lies entirely in the hour the clocks skipped
        if current is not None and begin <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (begin, end)
    if current is not None:
        yield current


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass aware UTC times")
    return moment.astimezone(UTC)


def _week_text(week: tuple[tuple[Minutes, ...], ...]) -> list[str]:
    """'Mon–Fri 08:00–17:00', 'Sat–Sun off': consecutive days with equal hours as one group."""
    groups: list[tuple[int, int, tuple[Minutes, ...]]] = []
    for index, hours in enumerate(week):
        if groups and groups[-1][2] == hours:
            groups[-1] = (groups[-1][0], index, hours)
        else:
            groups.append((index, index, hours))
    names = [d.value.capitalize() for d in WEEK]
    texts = []
    for first, last, hours in groups:
        days = names[first] if first == last else f"{names[first]}–{names[last]}"
        spans = ", ".join(f"{_hhmm(s)}–{_hhmm(e)}" for s, e in hours) or "off"
        texts.append(f"{days} {spans}")
    return texts


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
