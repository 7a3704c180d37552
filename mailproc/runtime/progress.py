"""Progress through a large backlog: a bar for a person at a terminal, log lines for a journal.

Thousands of waiting mails take minutes; whoever started mailproc should see that it moves and
how fast, without a bar's control characters ending up in a log file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from tqdm import tqdm

log = logging.getLogger(__name__)

MIN_BACKLOG = 100  # smaller passes finish too fast to need a report


class Progress(Protocol):
    def advance(self, count: int = 1) -> None: ...

    def close(self) -> None: ...


ProgressFactory = Callable[[str, int], Progress]


class Silent:
    def advance(self, count: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class Bar:
    def __init__(self, name: str, total: int) -> None:
        self._bar = tqdm(total=total, desc=name, unit="mail", dynamic_ncols=True)

    def advance(self, count: int = 1) -> None:
        self._bar.update(count)

    def close(self) -> None:
        self._bar.close()


class LogLines:
    """An INFO line every `every` seconds (and one at the end) with the count and the rate."""

    def __init__(
        self,
        name: str,
        total: int,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.total, self.every, self.clock = name, total, every, clock
        self.done = 0
        self.started = self.last = clock()

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.clock() - self.last >= self.every:
            self._report("backlog")

    def close(self) -> None:
        if self.done:
            self._report("backlog pass done")

    def _report(self, what: str) -> None:
        now = self.clock()
        rate = self.done / max(now - self.started, 1e-9)
        log.info(
            "%s: %s: %d of %d mails (%.0f%%), %.1f mails/s",
            self.name,
            what,
            self.done,
            self.total,
            100 * self.done / max(self.total, 1),
            rate,
            extra={"source": self.name, "done": self.done, "total": self.total},
        )
        self.last = now


def progress_factory(terminal: bool) -> ProgressFactory:
    """A bar when a person watches stderr, log lines otherwise; nothing for small passes."""

    def make(name: str, total: int) -> Progress:
        if total < MIN_BACKLOG:
            return Silent()
        return Bar(name, total) if terminal else LogLines(name, total)

    return make
