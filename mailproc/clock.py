"""The one wall-clock read. Everything else is given `now`, or a `WallClock` to ask.

Time is a parameter: the Desk, the escalation pass, the sender and the daemon take a
`WallClock` (tests pass a fake one they move by hand); only the entry points pass `utcnow`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

WallClock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)
