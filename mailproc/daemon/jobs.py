"""The daemon's periodic jobs: each on its own thread, on time, never two runs of one job at once.

Components plug in with one `Job` each (see `mailproc.daemon.loop.standard_jobs`). A job is an
ordinary function that opens its own transactions; the `schedule` library says when it is due,
and a thread per run means a slow job delays neither the others nor the mailboxes, which keep
their own threads. A run still going when the job is due again is not doubled: that turn is
skipped. (`schedule` counts in local wall-clock time: run the daemon with TZ=UTC, as the
shipped systemd unit does, so that a daylight-saving change delays no job by an hour.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import schedule

from mailproc.runtime.retry import StateLog
from mailproc.store.errors import StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Job:
    """Call `run` every `every_seconds` (and once at start) on a thread of its own."""

    name: str
    every_seconds: float
    run: Callable[[], object]


class JobRunner:
    def __init__(self, jobs: Sequence[Job], database: str = "the database") -> None:
        self._database = database  # named in an outage's log line
        self._scheduler = schedule.Scheduler()
        self._threads: dict[str, threading.Thread] = {}
        self._jobs = {job.name: job for job in jobs}
        self._states = {job.name: StateLog(f"job {job.name}", log) for job in jobs}
        for job in jobs:
            # schedule's hint says int, its arithmetic (timedelta) takes any number of seconds
            every = self._scheduler.every(job.every_seconds)  # type: ignore[arg-type]
            every.seconds.do(self._launch, job)

    def start(self) -> None:
        """Run every job once now: work that piled up while the daemon was down goes first."""
        self._scheduler.run_all()

    def run_pending(self) -> None:
        self._scheduler.run_pending()

    def seconds_to_next(self) -> float | None:
        seconds: float | None = self._scheduler.idle_seconds
        return None if seconds is None else max(0.0, seconds)

    def names(self) -> list[str]:
        return [f"{name} every {job.every_seconds:g}s" for name, job in self._jobs.items()]

    def running(self) -> list[str]:
        return sorted(name for name, t in self._threads.items() if t.is_alive())

    def join(self, timeout: float) -> None:
        """Wait for the runs in progress; a job is transactional, so one cut short is safe."""
        for thread in list(self._threads.values()):
            thread.join(timeout)

    def _launch(self, job: Job) -> None:
        current = self._threads.get(job.name)
        if current is not None and current.is_alive():
            log.info("job %s: still running, this turn is skipped", job.name)
            return
        thread = threading.Thread(
            target=self._run, args=(job,), name=f"job-{job.name}", daemon=True
        )
        self._threads[job.name] = thread
        thread.start()

    def _run(self, job: Job) -> None:
        state = self._states[job.name]
        try:
            job.run()
        except StoreUnavailable as exc:
            state.failing("database unavailable", f"{self._database}: {exc}")
        except Exception as exc:
            if state.state != f"failed: {type(exc).__name__}":
                log.exception("job %s failed", job.name)
            state.failing(f"failed: {type(exc).__name__}", str(exc))
        else:
            state.ok()
