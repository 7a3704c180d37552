"""Instants as people type them and as the desk keeps them.

A local wall time names no instant when the clocks skip it (spring forward) and two when they
repeat it (autumn). Where a person typed one (`sla what-if --at`, a date and time in the
configuration) only they know what they meant, so `typed_instant` refuses it with the zone and
the gap or fold; where one comes out of a computation (a cut-off on the day the clocks change),
`wall_instant` resolves it by one rule, Python's fold=0: a repeated time is its earlier
occurrence, a skipped time is read with the offset in force before the jump (02:30 in a gap
from 02:00 to 03:00 is 03:30 after it). Working hours follow their own rule, stated in
mailproc.calendars, because an interval has two edges.

The desk keeps time in whole seconds: every instant is rounded up to the next whole second
where it enters (the clock read by the Desk and the escalation pass, a time typed on the
command line, history written by an older version) and where arithmetic makes a fraction (a
percentage of a target), so what is stored, what is computed and what `sla explain` shows are
the same instant, and a deadline is never shown earlier than it is. The sender compares the
rows' due times the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

SECOND = timedelta(seconds=1)


class WallTimeError(ValueError):
    """A local time that names no instant, or two, in its zone: the message says which."""


def whole_second(moment: datetime) -> datetime:
    """The instant rounded up to the next whole second (unchanged if it is one)."""
    if not moment.microsecond:
        return moment
    return moment.replace(microsecond=0) + SECOND


def whole_seconds(amount: timedelta) -> timedelta:
    """An amount rounded up to whole seconds."""
    if not amount.microseconds:
        return amount
    return amount - timedelta(microseconds=amount.microseconds) + SECOND


def offsets(local: datetime, zone: tzinfo) -> tuple[timedelta, timedelta]:
    """The UTC offsets a naive wall time has with fold=0 and fold=1: equal for an ordinary
    time, the earlier offset first for a repeated one, the later first for a skipped one."""
    before = local.replace(tzinfo=zone, fold=0).utcoffset()
    after = local.replace(tzinfo=zone, fold=1).utcoffset()
    assert before is not None and after is not None
    return before, after


def wall_instant(local: datetime, zone: tzinfo) -> datetime:
    """A naive wall time computed by the desk, as a UTC instant, by the fold=0 rule."""
    return (local - offsets(local, zone)[0]).replace(tzinfo=UTC)


def typed_instant(local: datetime, zone: tzinfo) -> datetime:
    """A wall time a person typed (naive: meant in `zone`; aware: taken as given), as a UTC
    instant rounded up to the whole second; WallTimeError when the zone skips or repeats it."""
    if local.tzinfo is not None and local.utcoffset() is not None:
        return whole_second(local.astimezone(UTC))
    local = local.replace(tzinfo=None)
    first, second = offsets(local, zone)
    if first != second:
        raise WallTimeError(_problem(local, zone, first, second))
    return whole_second((local - first).replace(tzinfo=UTC))


def _problem(local: datetime, zone: tzinfo, first: timedelta, second: timedelta) -> str:
    name, shown = _zone_name(zone), local.isoformat(" ", "minutes")
    if first > second:  # the clocks went back: this wall time happens twice
        early, late = _offset(first), _offset(second)
        return (
            f"{shown} happens twice in {name}: the clocks go back "
            f"{_edge(local, zone, first, second)}, so it is first {early} and then {late}; "
            f"write the offset you mean, e.g. {local.isoformat('T', 'minutes')}{early}"
        )
    return (
        f"{shown} does not exist in {name}: the clocks jump forward "
        f"{_edge(local, zone, first, second)}; give a time before or after the gap"
    )


def _edge(local: datetime, zone: tzinfo, first: timedelta, second: timedelta) -> str:
    """'from 03:00 to 02:00 on 2026-10-25' (fold) or 'from 02:00 to 03:00 on 2026-03-29' (gap)."""
    low, high = sorted(((local - first).replace(tzinfo=UTC), (local - second).replace(tzinfo=UTC)))
    jump = transition(low, high, zone)
    after = jump + second
    return f"from {(jump + first):%H:%M} to {after:%H:%M} on {after.date().isoformat()}"


def transition(low: datetime, high: datetime, zone: tzinfo) -> datetime:
    """The instant, to the second, between `low` (old offset) and `high` (new offset) at which
    the zone's clocks change: a dozen conversions, for an event that happens twice a year."""
    old = low.astimezone(zone).utcoffset()
    lo, hi = 0, int((high - low).total_seconds())
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if (low + timedelta(seconds=middle)).astimezone(zone).utcoffset() == old:
            lo = middle
        else:
            hi = middle
    return low + timedelta(seconds=hi)


def _offset(amount: timedelta) -> str:
    sign = "-" if amount < timedelta(0) else "+"
    minutes = abs(int(amount.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", zone))
