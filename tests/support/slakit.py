"""A small SLA policy for the core tests: an office calendar in Prague and a 24×7 one."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from mailproc.calendars import Weekday, around_the_clock, make_calendar
from mailproc.sla.clocks import Level, Policy, ServicePolicy, Targets, Trigger
from mailproc.vocabulary import Priority, SlaTarget

PRAGUE = ZoneInfo("Europe/Prague")
H, M = timedelta(hours=1), timedelta(minutes=1)
WORKDAYS = [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI]
OFFICE = make_calendar(
    "office", "Europe/Prague", {d: ["08:00-12:00", "13:00-17:00"] for d in WORKDAYS}, (), "CZ"
)
ALWAYS = around_the_clock()
TARGETS = {
    Priority.P1: Targets(30 * M, 4 * H),
    Priority.P2: Targets(1 * H, 8 * H),
    Priority.P3: Targets(4 * H, 24 * H),
    Priority.P4: Targets(8 * H, 40 * H),
}
LADDER = (
    Level(1, Trigger(percent=75), ("assignee", "first_line")),
    Level(2, Trigger(), ("team",)),
    Level(3, Trigger(after_breach=2 * H), ("duty@example.com",)),
)
RESOLUTION_ONLY = (Level(1, Trigger(), ("team",), frozenset({SlaTarget.RESOLUTION})),)
POLICY = Policy(
    {
        "email": ServicePolicy(OFFICE, TARGETS, LADDER),
        "network": ServicePolicy(ALWAYS, TARGETS, LADDER),
        "quiet": ServicePolicy(OFFICE, TARGETS, RESOLUTION_ONLY),
    }
)


def t(text: str) -> datetime:
    """Prague wall time ('2026-03-02 09:00', a Monday) as an aware UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=PRAGUE).astimezone(UTC)


def wall(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(PRAGUE).strftime("%a %Y-%m-%d %H:%M")
