"""Capped exponential backoff, and a log that speaks when a state changes, not per attempt.

A mailbox that is down for an hour must cost the log two lines (down, back), not one per
reconnect attempt, or the line that matters drowns; and the attempts must thin out, so a
daemon never hammers a server that is restarting.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

OK = "ok"


@dataclass
class Backoff:
    """Delays initial, initial*factor, … up to cap; reset() after a success."""

    initial: float
    cap: float
    factor: float = 2.0
    _next: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.reset()

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self.cap, self._next * self.factor)
        return delay

    def reset(self) -> None:
        self._next = min(self.initial, self.cap)


@dataclass
class StateLog:
    """Logs the transitions of one component between working and failing (for a reason)."""

    name: str
    logger: logging.Logger
    clock: Callable[[], float] = time.monotonic
    state: str | None = None  # None until the first attempt, then OK or the problem
    attempts: int = 0
    since: float = 0.0

    def ok(self) -> None:
        if self.state not in (None, OK):
            self.logger.info(
                "%s: working again after %d failed attempt(s) in %.0fs (was: %s)",
                self.name,
                self.attempts,
                self.clock() - self.since,
                self.state,
                extra={"source": self.name, "state": OK},
            )
        self.state, self.attempts = OK, 0

    def failing(self, problem: str, detail: str) -> bool:
        """One failed attempt. `problem` names the state (e.g. "mailbox unavailable");
        only a change of it is logged, with `detail` (the first error) for the reader.
        Returns whether the state changed."""
        changed = problem != self.state
        if changed:
            self.logger.warning(
                "%s: %s: %s (retrying with backoff; logged again when this changes)",
                self.name,
                problem,
                detail,
                extra={"source": self.name, "state": problem},
            )
            self.state, self.attempts, self.since = problem, 0, self.clock()
        self.attempts += 1
        return changed
