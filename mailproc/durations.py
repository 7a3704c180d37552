"""Amounts of business time as people write them in the configuration: "30m", "4h", "2h30m".

Only hours and minutes: a "day" of business time means 8 hours on one calendar and 24 on
another, so the configuration says what it means in hours.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^(?:(\d{1,5})h)?(?:(\d{1,6})m)?$")


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


def format_duration(amount: timedelta) -> str:
    """The inverse of parse_duration for whole minutes, with a sign and seconds when needed."""
    sign, amount = ("-", -amount) if amount < timedelta(0) else ("", amount)
    minutes, seconds = divmod(int(amount.total_seconds()), 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    if seconds:
        parts.append(f"{seconds}s")
    return sign + ("".join(parts) or "0m")
