"""Amounts of business time as people write them in the configuration: "30m", "4h", "2h30m",
and targets in business days: "3bd".

A duration has only hours and minutes: a "day" of business time means 8 hours on one calendar
and 24 on another, so a duration says what it means in hours. A target in business days is
something else, a deadline: the end of the Nth working day of the calendar (see
BusinessCalendar.end_of_working_days); the SLA clocks turn it into business time when the clock
starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from mailproc.times import whole_seconds

_DURATION = re.compile(r"^(?:(\d{1,5})h)?(?:(\d{1,6})m)?$")
_DAYS = re.compile(r"^(\d{1,3})bd$")


@dataclass(frozen=True, slots=True)
class BusinessDays:
    """A target of `count` business days: until the end of the count-th working day."""

    count: int

    def __str__(self) -> str:
        return f"{self.count}bd"


TargetAmount = timedelta | BusinessDays


def parse_duration(text: str) -> timedelta:
    """'4h', '30m', '2h30m' (spaces ignored, any case) -> timedelta; ValueError with the syntax."""
    match = _DURATION.match(text.replace(" ", "").lower())
    if match is None or not any(match.groups()):
        raise ValueError(
            f"'{text}' is not an amount of business time; write hours and minutes like "
            "'4h', '30m' or '2h30m' (no days: a business day differs between calendars)"
        )
    hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes)


def parse_target(text: str) -> TargetAmount:
    """A target as configured: a duration ('4h') or business days ('3bd', at least 1)."""
    days = _DAYS.match(text.replace(" ", "").lower())
    if days is None:
        try:
            return parse_duration(text)
        except ValueError:
            raise ValueError(
                f"'{text}' is not a target; write business time like '4h', '30m' or '2h30m', "
                "or business days like '3bd' (the end of the third working day)"
            ) from None
    count = int(days.group(1))
    if count < 1:
        raise ValueError(f"'{text}': a target in business days needs at least one day")
    return BusinessDays(count)


def format_target(target: TargetAmount) -> str:
    return str(target) if isinstance(target, BusinessDays) else format_duration(target)


def format_duration(amount: timedelta) -> str:
    """The inverse of parse_duration for whole minutes, with a sign and seconds when needed
    (a fraction of a second, which the desk does not keep, is rounded up)."""
    sign, amount = ("-", -amount) if amount < timedelta(0) else ("", amount)
    amount = whole_seconds(amount)
    minutes, seconds = divmod(int(amount.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if seconds:
        parts.append(f"{seconds}s")
    return sign + ("".join(parts) or "0m")
