"""Periodic jobs on their own threads, the daemon's standard jobs, reload hooks."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest

from mailproc.config.settings import ConfigError, Settings, settings_from_dict
from mailproc.daemon.jobs import Job, JobRunner
from mailproc.daemon.loop import Daemon
from mailproc.desk.mail import Desk
from mailproc.store.queries import get_incident
from tests.support.daemon import (
    imap_source,
    make_settings,
    ready_engine,
    running,
    wait_until,
)
from tests.support.desk import FakeClock
from tests.support.fixtures import started
from tests.support.mailfactory import make_mail
from tests.support.servers import PostgresServer


def turn(runner: JobRunner, until: object, what: str) -> None:
    """Drive the scheduler as the daemon's main loop does, until a condition holds."""

    def tick() -> object:
        runner.run_pending()
        return until() if callable(until) else until

    wait_until(tick, what=what)


def test_a_slow_job_neither_delays_the_others_nor_runs_twice_at_once():
    release, slow_runs, fast_runs = threading.Event(), [], []

    def slow() -> None:
        slow_runs.append(1)
        release.wait(20)

    runner = JobRunner([Job("slow", 0.05, slow), Job("fast", 0.05, lambda: fast_runs.append(1))])
    runner.start()
    turn(runner, lambda: len(fast_runs) >= 4, "the fast job's turns")
    assert runner.running() == ["slow"] and len(slow_runs) == 1
    release.set()
    runner.join(10)
    assert runner.running() == []


def test_a_failing_job_is_logged_once_and_keeps_its_turns(caplog):
    runs = []

    def broken() -> None:
        runs.append(1)
        raise RuntimeError("template missing")

    runner = JobRunner([Job("broken", 0.02, broken)])
    runner.start()
    turn(runner, lambda: len(runs) >= 4, "four failed turns")
    runner.join(10)
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([r for r in errors if r.exc_info]) == 1  # one traceback, not one per turn
    assert "job broken: failed: RuntimeError: template missing" in errors[-1].getMessage()


def test_the_daemon_closes_timed_out_incidents_as_its_first_job(sqlite_url, caplog):
    engine = ready_engine(sqlite_url)
    settings = make_settings(sqlite_url, {})
    clock = FakeClock()
    desk = Desk(settings, engine, clock)
    number = desk.handle(make_mail(to="network-support@example.com")).incident
    assert number is not None
    desk.handle(make_mail(sender="Sam <sam@example.com>", subject=f"[INC-{number}] [RESOLVE]"))
    later = FakeClock(clock.now + timedelta(days=6))
    with running(settings, clock=later):
        wait_until(lambda: get_incident(engine, number).incident.status == "Closed")
    assert "no mail sources configured" in caplog.text
    engine.dispose()


def test_the_daemon_mails_escalations_of_overdue_incidents(sqlite_url, smtp_server):
    """The escalation pass is one of the daemon's jobs, and its mail leaves through the sender."""
    engine = ready_engine(sqlite_url)
    smtp = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
    settings = make_settings(sqlite_url, {}, smtp=smtp, send_outbox_seconds=0.1)
    settings = settings.model_copy(
        update={"sla": settings.sla.model_copy(update={"escalation_interval_seconds": 0.1})}
    )
    clock = FakeClock()
    number = Desk(settings, engine, clock).handle(make_mail(subject="ERP down")).incident
    later = FakeClock(clock.now + timedelta(days=3))
    with running(settings, clock=later):
        wait_until(
            lambda: any("Escalation" in (m.subject or "") for m in smtp_server.messages),
            what="an escalation mail",
        )
    events = [e.kind for e in get_incident(engine, number).events]
    assert "escalated" in events
    engine.dispose()


def test_a_reload_runs_the_hooks_with_the_new_configuration(sqlite_url, caplog):
    ready_engine(sqlite_url).dispose()
    first = make_settings(sqlite_url, {})
    second = make_settings(sqlite_url, {}, status_max_age_seconds=60)
    configurations = iter([second])
    seen: list[Settings] = []

    def broken_hook(_: Settings) -> None:
        raise RuntimeError("a broken hook")

    with running(first) as daemon:
        daemon._load = lambda: next(configurations)  # type: ignore[method-assign]
        daemon.on_reload(broken_hook)
        daemon.on_reload(seen.append)
        daemon.reload()
        wait_until(lambda: seen, what="the hook")
    assert seen == [second] and seen[0].daemon.status_max_age_seconds == 60
    assert "reload hook" in caplog.text and "a broken hook" in caplog.text


def test_mail_in_over_imap_and_its_acknowledgment_out_over_smtp(
    sqlite_url, imap_mailbox, imap, smtp_server
):
    """The whole loop in one daemon: IDLE source, Desk, outbox, and the sender job."""
    ready_engine(sqlite_url).dispose()
    smtp = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
    settings = make_settings(
        sqlite_url, {"support": imap_source(imap_mailbox)}, smtp=smtp, send_outbox_seconds=0.1
    )
    with running(settings):
        imap.append("INBOX", make_mail(subject="Wi-Fi gone", sender="Eve <eve@example.org>"))
        (ack,) = smtp_server.wait_for(1, timeout=15)
    assert ack.rcpt_tos == ("eve@example.org",)
    assert "[INC-1]" in (ack.subject or "") and "Wi-Fi gone" in (ack.subject or "")


def test_the_daemon_will_not_sign_with_a_throwaway_key(sqlite_url):
    ready_engine(sqlite_url).dispose()
    from mailproc.config.settings import _embedded

    settings = settings_from_dict(_embedded() | {"database_url": sqlite_url}, "m.toml", {})
    with pytest.raises(
        ConfigError,
        match="no signing secret: set the environment variable MAILPROC_SECRET",
    ):
        Daemon(lambda: settings, {}).run()


def test_a_database_outage_is_logged_with_the_database_it_concerns(caplog):
    """The operator reading the log learns which database to go and look at, and no password."""
    with started(PostgresServer(), "a PostgreSQL to stop") as server:
        url = server.create_database("desk").replace("@", ":hunter2@", 1)
        ready_engine(url).dispose()
        settings = make_settings(url, {}, send_outbox_seconds=0.05)
    with running(settings):
        wait_until(lambda: "database unavailable" in caplog.text, what="the outage's log line")
    lines = [r.getMessage() for r in caplog.records if "database unavailable" in r.getMessage()]
    assert any(line.startswith("job ") for line in lines), lines
    assert all(f"127.0.0.1:{server.port}/desk" in line for line in lines), lines
    assert "hunter2" not in caplog.text
