"""The long-running daemon, and the single pass of `poll --once`.

Each configured source runs on a thread of its own (connect, drain, wait for mail under IDLE or
by polling, again), so a mailbox that is down or slow delays no other; the periodic jobs run on
threads of their own too (mailproc.daemon.jobs), so neither IDLE nor a backlog makes them late. The
main thread only keeps the schedule and answers signals:

- SIGTERM/SIGINT: every source finishes the mail in hand (commit, then settle), then exit 0.
- SIGHUP: read the configuration again; when it is valid, restart sources and jobs on it and
  run the reload hooks (`Daemon.on_reload`); when not, log why and carry on unchanged.

Under systemd (Type=notify) it says READY=1 once every source has made its first pass (a
source that is down counts: `status` tells about it), RELOADING=1 and STOPPING=1 around those,
and pets the watchdog from the main loop. With `daemon.metrics_listen` it serves the desk's
Prometheus metrics (mailproc.daemon.metrics) over HTTP.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import Engine

from mailproc.clock import WallClock, utcnow
from mailproc.config.credentials import without_secrets
from mailproc.config.paths import database_name
from mailproc.config.settings import ConfigError, Settings
from mailproc.config.sources import DaemonConfig
from mailproc.daemon.jobs import Job, JobRunner
from mailproc.daemon.listener import CommandServer, Listener
from mailproc.desk.attempts import Attempts
from mailproc.desk.escalations import Escalator
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Batcher
from mailproc.notify.sender import send_pending
from mailproc.runtime import heap
from mailproc.runtime.progress import ProgressFactory, progress_factory
from mailproc.runtime.retry import Backoff, StateLog
from mailproc.runtime.sdnotify import Notifier
from mailproc.runtime.wake import Wake
from mailproc.sources import kinds
from mailproc.sources.drain import (
    CredentialsMissing,
    ParseAhead,
    Source,
    SourceUnavailable,
    Tally,
    drain,
)
from mailproc.sources.health import Ledger
from mailproc.sources.parse_ahead import default_jobs
from mailproc.store.db import make_engine
from mailproc.store.errors import OUTAGES, StoreUnavailable
from mailproc.store.schema import SchemaOutdated, check_current

log = logging.getLogger(__name__)

JobFactory = Callable[[Settings, Desk], Sequence[Job]]
ReloadHook = Callable[[Settings], None]


def standard_jobs(settings: Settings, desk: Desk) -> list[Job]:
    """The daemon's periodic jobs. Another component joins with one line here."""
    every = settings.daemon
    send = partial(send_pending, settings, desk.engine, desk.clock)
    escalate = Escalator(settings, desk.engine, desk.clock, book=desk.sla, outbox=desk.outbox)
    return [
        Job("close-timed-out", every.close_timed_out_seconds, desk.close_timed_out),
        Job("remind-reporters", every.close_timed_out_seconds, desk.remind_reporters),
        Job("digest", 60, desk.send_digests),
        Job("send-outbox", every.send_outbox_seconds, send),
        Job("release-waiting", every.release_waiting_seconds, desk.release_due),
        Job("escalate", settings.sla.escalation_interval_seconds, escalate.run),
        Job("prune-crash-marks", 6 * 3600, desk.attempts.prune),
    ]


def parse_ahead(settings: Settings) -> ParseAhead:
    """A backlog is parsed in worker processes (the cores but one), as `ingest` parses a folder."""
    limits = settings.limits
    return ParseAhead(default_jobs(), limits.max_message_bytes, limits.headers)


def build_source(name: str, settings: Settings, environ: Mapping[str, str]) -> Source:
    """A source of the configuration; its helper programs get the environment without our
    secrets."""
    helper = without_secrets(environ, settings.secret_refs())
    return kinds.build(name, settings.sources[name], environ, helper)


def check_secrets(settings: Settings, environ: Mapping[str, str]) -> None:
    """Every secret a pass needs, at start: a missing one is a configuration error (exit 3),
    not a retry loop. The signing secret too, when notices are on: queued with a throw-away key,
    their reply tokens would be refused once this process ends (SecretMissing)."""
    _ = settings.verification_keys
    for name, config in settings.sources.items():
        try:
            kinds.check(config, environ)
        except CredentialsMissing as exc:
            raise ConfigError(f"{settings.source}: sources.{name}: {exc}") from None


class SourceWorker:
    """One source's loop; failures back off (capped), are logged once per change, never end it."""

    def __init__(
        self,
        source: Source,
        batcher: Batcher,
        ledger: Ledger,
        config: DaemonConfig,
        progress: ProgressFactory,
        ahead: ParseAhead | None = None,
        attempts: Attempts | None = None,
        database: str = "the database",
    ) -> None:
        self.source, self.batcher, self.ledger, self.progress = source, batcher, ledger, progress
        self.database = database  # named in the outage's log line: which one to go and look at
        self.ahead = ahead or ParseAhead()
        self.attempts = attempts
        self.backoff = Backoff(config.backoff_initial_seconds, config.backoff_max_seconds)
        self.state = StateLog(source.name, log)
        self.wake = Wake()
        self.first_pass = threading.Event()  # set after the first drain, done or failed
        self.thread = threading.Thread(target=self.run, name=f"source-{source.name}", daemon=True)

    def run(self) -> None:
        connected = False
        try:
            while not self.wake.is_set():
                connected = self._turn(connected)
        finally:
            self.source.close(broken=not connected)

    def _turn(self, connected: bool) -> bool:
        """Connect if need be, drain, wait; returns whether the connection is still good."""
        try:
            if not connected:
                self.source.open(readonly=False)
            drain(
                self.source,
                self.batcher,
                self.wake,
                self.progress,
                self.ledger,
                self.ahead,
                self.attempts,
            )
            self.first_pass.set()
            self.state.ok()
            self.backoff.reset()
            if not self.wake.is_set():
                self.source.wait(self.wake)
            return True
        except SourceUnavailable as exc:
            self.source.close(broken=True)
            self._failed("mailbox unavailable", str(exc))
            return False
        except StoreUnavailable as exc:
            self._failed("database unavailable", f"{self.database}: {exc}")
            return True
        except Exception as exc:  # a bug: keep the source alive, show the trace once
            if self.state.state != "internal error":
                log.exception("%s: internal error", self.source.name)
            self.source.close(broken=True)
            self._failed("internal error", f"{type(exc).__name__}: {exc}")
            return False

    def _failed(self, problem: str, detail: str) -> None:
        self.first_pass.set()
        if self.state.failing(problem, detail):
            # if the database is what failed, status shows the ageing success instead
            with suppress(StoreUnavailable):
                self.ledger.failed(self.source.name, f"{problem}: {detail}")
        self.wake.wait(self.backoff.next_delay())


class Runtime:
    """Everything built from one configuration; a reload builds a new one and stops the old."""

    def __init__(
        self,
        settings: Settings,
        environ: Mapping[str, str],
        clock: WallClock,
        jobs: JobFactory,
        progress: ProgressFactory,
    ) -> None:
        check_secrets(settings, environ)
        self.settings = settings
        self.engine = _engine(settings)
        self.desk = Desk(settings, self.engine, clock)
        ledger = Ledger(self.engine, clock)
        ahead = parse_ahead(settings)
        database = database_name(settings.database_url)
        self.workers = [
            SourceWorker(
                build_source(name, settings, environ),
                self.desk.batch,
                ledger,
                settings.daemon,
                progress,
                ahead,
                self.desk.attempts,
                database,
            )
            for name in settings.sources
        ]
        self.jobs = JobRunner(jobs(settings, self.desk), database)
        where = settings.daemon.socket
        self.listener = Listener(where, self.desk) if where is not None else None
        commands = settings.daemon.command_socket
        self.commands = CommandServer(commands, settings.source) if commands else None

    def start(self) -> None:
        for worker in self.workers:
            worker.thread.start()
        self.jobs.start()
        if self.listener is not None:
            self.listener.start()
        if self.commands is not None:
            self.commands.start()

    def stop(self, timeout: float = 60) -> None:
        if self.commands is not None:
            self.commands.stop()
        if self.listener is not None:
            self.listener.stop(timeout)
        for worker in self.workers:
            worker.wake.set()
        for worker in self.workers:
            worker.thread.join(timeout)
            if not worker.thread.is_alive():
                worker.wake.close()
        self.jobs.join(min(timeout, 10))
        self.engine.dispose()


def _engine(settings: Settings) -> Engine:
    """An engine at the code's schema; a database that is down now is waited for later."""
    engine = make_engine(settings.database_url)
    try:
        check_current(engine)
    except OUTAGES as exc:
        log.warning(
            "database unavailable at start, the sources will retry: %s: %s",
            database_name(settings.database_url),
            exc.orig or exc,
        )
    except SchemaOutdated:
        engine.dispose()
        raise
    return engine


class Daemon:
    """The process: a Runtime from the configuration, until stop(), renewed on reload()."""

    def __init__(
        self,
        load: Callable[[], Settings],
        environ: Mapping[str, str],
        *,
        jobs: JobFactory = standard_jobs,
        clock: WallClock = utcnow,
        progress: ProgressFactory | None = None,
    ) -> None:
        self._load, self._environ, self._jobs, self._clock = load, environ, jobs, clock
        self._progress = progress or progress_factory(terminal=False)
        self._hooks: list[ReloadHook] = []
        self.runtime: Runtime | None = None  # the one serving, for introspection
        self._wake = Wake()
        self._stopping = False
        self._reloading = False
        self._systemd = Notifier(environ)
        self._ready = False
        self._metrics: Any = None  # the endpoint's server, and where it listens
        self._metrics_at: str | None = None

    def on_reload(self, hook: ReloadHook) -> None:
        """Call `hook(new_settings)` after each successful reload (e.g. to reread templates)."""
        self._hooks.append(hook)

    def stop(self) -> None:
        """Safe from a signal handler or another thread."""
        self._stopping = True
        self._wake.set()

    def reload(self) -> None:
        self._reloading = True
        self._wake.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGHUP, lambda *_: self.reload())

    def run(self) -> None:
        """Until stop(): serve, reloading on request. Raises ConfigError or SchemaOutdated
        only for the first configuration; later ones are refused with a log line."""
        runtime = self.runtime = self._build(self._load())
        self._metrics_at = runtime.settings.daemon.metrics_listen
        self._metrics = self._serve_metrics(self._metrics_at)
        runtime.start()
        heap.loaded()
        _announce(runtime)
        try:
            while True:
                self._serve(runtime)
                if self._stopping:
                    log.info("stopping: the mails in hand are finished, the rest stay in place")
                    break
                runtime = self.runtime = self._reloaded(runtime)
        finally:
            self._systemd.notify("STOPPING=1")
            _shut(self._metrics)
            runtime.stop()
            log.info("mailproc daemon stopped")

    def _serve_metrics(self, address: str | None) -> Any:
        """The metrics endpoint; it reads the Runtime serving at each scrape."""
        if address is None:
            return None
        from prometheus_client import start_http_server

        from mailproc.daemon.metrics import registry_for

        def current() -> tuple[Settings, Engine]:
            runtime = self.runtime
            assert runtime is not None
            return runtime.settings, runtime.engine

        host, _, port = address.rpartition(":")
        server, _thread = start_http_server(
            int(port), host.strip("[]"), registry=registry_for(current)
        )
        log.info("metrics on http://%s/metrics", address)
        return server

    def _move_metrics(self, settings: Settings) -> None:
        """A reload that changes `metrics_listen` moves the endpoint; one that cannot listen
        there keeps the old one and says so (Prometheus keeps scraping what it knows)."""
        address = settings.daemon.metrics_listen
        if address == self._metrics_at:
            return
        try:
            server = self._serve_metrics(address)
        except OSError as exc:
            log.error(
                "metrics: cannot listen on %s, still on %s: %s", address, self._metrics_at, exc
            )
            return
        _shut(self._metrics)
        self._metrics, self._metrics_at = server, address
        if address is None:
            log.info("metrics no longer served")

    def _build(self, settings: Settings) -> Runtime:
        return Runtime(settings, self._environ, self._clock, self._jobs, self._progress)

    def _serve(self, runtime: Runtime) -> None:
        pet = self._systemd.watchdog_interval
        while not (self._stopping or self._reloading):
            runtime.jobs.run_pending()
            self._tell_systemd(runtime)
            due = runtime.jobs.seconds_to_next()
            wait = 60 if due is None else min(due, 60)
            if not self._ready:
                wait = min(wait, 0.5)  # look again soon whether every source has passed
            self._wake.wait(wait if pet is None else min(wait, pet))

    def _tell_systemd(self, runtime: Runtime) -> None:
        if not self._ready and all(w.first_pass.is_set() for w in runtime.workers):
            self._ready = True
            sources = len(runtime.workers)
            self._systemd.notify("READY=1", f"STATUS=serving {sources} mail source(s)")
            log.info("ready: every source made its first pass")
        if self._systemd.watchdog_interval is not None:
            self._systemd.notify("WATCHDOG=1")

    def _reloaded(self, current: Runtime) -> Runtime:
        self._reloading = False
        self._wake.clear()
        self._systemd.notify("RELOADING=1")
        try:
            fresh = self._build(self._load())
        except (ConfigError, SchemaOutdated) as exc:
            log.error("reload refused, carrying on with the configuration in use:\n%s", exc)
            self._systemd.notify("READY=1")
            return current
        self._ready = False
        log.info("reloading: %s", fresh.settings.source)
        current.stop()
        fresh.start()
        _announce(fresh)
        self._move_metrics(fresh.settings)
        for hook in self._hooks:
            try:
                hook(fresh.settings)
            except Exception:
                log.exception("reload hook %r failed", hook)
        return fresh


def _shut(server: Any) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()  # the port is free for the next endpoint at once


def _announce(runtime: Runtime) -> None:
    sources = ", ".join(
        f"{w.source.name} ({kinds.where(runtime.settings.sources[w.source.name])})"
        for w in runtime.workers
    )
    if not sources:
        log.warning("no mail sources configured ([sources.*]): only the periodic jobs run")
    jobs = ", ".join(runtime.jobs.names())
    log.info("mailproc daemon running: sources %s; jobs %s", sources or "none", jobs or "none")


@dataclass(frozen=True, slots=True)
class PassResult:
    source: str
    ok: bool
    text: str


def poll_once(
    settings: Settings,
    environ: Mapping[str, str],
    names: Sequence[str],
    *,
    dry_run: bool = False,
    stop: Wake | None = None,
    clock: WallClock = utcnow,
    progress: ProgressFactory | None = None,
) -> list[PassResult]:
    """One pass over the named sources (all if none), one after another, then return."""
    check_secrets(settings, environ)
    engine = make_engine(settings.database_url)
    wake = stop if stop is not None else Wake()
    desk, ledger = Desk(settings, engine, clock), Ledger(engine, clock)
    sources = [build_source(n, settings, environ) for n in names or settings.sources]
    try:
        check_current(engine)
        for source in sources if dry_run else ():
            source.cursor = ledger.cursor(source.name)  # read before the dry run's transaction
        ahead = parse_ahead(settings)
        with desk.batches(dry_run) as batcher:
            results = [
                _poll(
                    source,
                    batcher,
                    wake,
                    progress or progress_factory(False),
                    ledger,
                    dry_run,
                    ahead,
                    None if dry_run else desk.attempts,
                )
                for source in sources
            ]
        if not dry_run:
            desk.release_due()  # replies whose parent did not come in time
        return results
    finally:
        engine.dispose()
        if stop is None:
            wake.close()


def _poll(
    source: Source,
    batcher: Batcher,
    stop: Wake,
    progress: ProgressFactory,
    ledger: Ledger,
    dry_run: bool,
    ahead: ParseAhead,
    attempts: Attempts | None,
) -> PassResult:
    try:
        source.open(readonly=dry_run)
        journal = None if dry_run else ledger
        tally: Tally = drain(source, batcher, stop, progress, journal, ahead, attempts)
    except SourceUnavailable as exc:
        source.close(broken=True)
        if not dry_run:
            ledger.failed(source.name, f"mailbox unavailable: {exc}")
        return PassResult(source.name, False, f"failed: {exc}")
    source.close()
    prefix = "dry run, nothing changed: " if dry_run else ""
    return PassResult(source.name, True, f"{prefix}{tally}")
