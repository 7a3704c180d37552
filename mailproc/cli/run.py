"""`run` (the daemon), `poll --once` (one pass, for cron) and `status` (for monitoring)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import click

from mailproc.cli.app import App, fail, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.clock import utcnow
from mailproc.config.settings import load_settings
from mailproc.daemon.loop import Daemon, poll_once
from mailproc.runtime.progress import progress_factory
from mailproc.runtime.wake import Wake
from mailproc.sources.health import Check, status_checks
from mailproc.store.errors import StoreUnavailable
from mailproc.store.figures import Figures

EXIT_UNHEALTHY = 1


@click.command()
@pass_app
def run(app: App) -> None:
    """Run the daemon: every configured source, IDLE or polling, and the periodic jobs.

    SIGTERM or SIGINT finish the mail in hand, then exit 0; SIGHUP reloads the configuration.
    """
    daemon = Daemon(
        lambda: load_settings(app.config_path),
        os.environ,
        progress=progress_factory(terminal=sys.stderr.isatty()),
    )
    daemon.install_signal_handlers()
    daemon.run()


@click.command()
@click.option("--once", is_flag=True, help="One pass over the sources, then exit (for cron).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Shadow mode: report what would happen; store, move and send nothing.",
)
@click.option("--source", "names", multiple=True, help="Only this source (repeatable).")
@json_option
@pass_app
def poll(app: App, once: bool, dry_run: bool, names: tuple[str, ...], as_json: bool) -> None:
    """Fetch and process waiting mail from the configured sources once.

    The exit code is 1 when a source could not be read or the database could not be reached.
    """
    if not once:
        raise click.UsageError("poll needs --once; the long-running daemon is `mailproc run`")
    unknown = sorted(set(names) - set(app.settings.sources))
    if unknown:
        raise click.BadParameter(f"unknown source {unknown[0]!r}", param_hint="--source")
    if not app.settings.sources:
        fail("no mail sources configured ([sources.*] in the configuration)")
    stop = Wake()
    before = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        results = poll_once(
            app.settings,
            os.environ,
            names,
            dry_run=dry_run,
            stop=stop,
            progress=progress_factory(terminal=sys.stderr.isatty()),
        )
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        stop.close()
    if as_json:
        echo_json({"dry_run": dry_run, "sources": results})
    for result in results if not as_json else ():
        click.echo(f"{result.source}: {result.text}")
    if not all(result.ok for result in results):
        sys.exit(EXIT_UNHEALTHY)


@click.command()
@json_option
@pass_app
def status(app: App, as_json: bool) -> None:
    """Is mail flowing? For monitoring: exit 0 OK, 1 WARNING, 2 CRITICAL (3: configuration).

    Reads what the daemon, `poll --once`, `ingest` and `send --once` recorded in the database:
    each configured source's last successful poll and backlog (a pipe or cron `ingest` set-up
    has none: its last stored mail is shown), the outbox's waiting and failed notices. The
    first line is the verdict (with performance data), then one line per check.
    """
    checks, data = _status(app)
    worst = max((_STATES.index(c.state) for c in checks), default=0)
    data = {"state": _STATES[worst], "exit_code": worst, "checks": checks, **data}
    if as_json:
        echo_json(data)
    else:
        bad = [c.name for c in checks if not c.healthy]
        verdict = f"mailproc {_STATES[worst].upper()}{': ' if bad else ''}{', '.join(bad)}"
        click.echo(f"{verdict} | {_perfdata(data)}" if "outbox" in data else verdict)
        for check in checks:
            click.echo(f"{check.name}: {check.state.upper()} {check.detail}")
    sys.exit(worst)


_STATES = ("ok", "warning", "critical")


def _status(app: App) -> tuple[list[Check], dict[str, Any]]:
    from sqlalchemy.exc import SQLAlchemyError

    from mailproc.store.figures import figures
    from mailproc.store.schema import SchemaOutdated

    try:
        found = figures(app.ready_engine(), utcnow())
    except (SQLAlchemyError, SchemaOutdated, StoreUnavailable) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [Check("database", False, f"{app.database}: {reason}")], {}
    return status_checks(app.settings, found), _numbers(found)


def _numbers(found: Figures) -> dict[str, Any]:
    services = found.services.values()
    return {
        "sources": {
            name: {
                "backlog": record.backlog,
                "last_ok_at": record.last_ok_at,
                "last_ok_age_seconds": found.age(record.last_ok_at),
                "last_error": record.last_error,
                "last_error_at": record.last_error_at,
            }
            for name, record in found.sources.items()
        },
        "mail": {
            "stored": found.messages,
            "last_received_at": found.last_received_at,
            "last_received_age_seconds": found.age(found.last_received_at),
        },
        "outbox": {
            **{status: found.notices.get(status, 0) for status in _NOTICE_STATES},
            "oldest_due_age_seconds": found.age(found.oldest_due_at),
        },
        "incidents": {
            "open": sum(s.open for s in services),
            "at_risk": sum(s.at_risk for s in services),
            "breached": sum(s.breached for s in services),
            "by_service": found.services,
        },
        "breakers_open": found.open_breakers,
    }


_NOTICE_STATES = ("pending", "failed", "suppressed", "sent")


def _perfdata(data: dict[str, Any]) -> str:
    """Nagios performance data: label=value pairs after the verdict's '|'."""
    backlog = sum(s["backlog"] for s in data["sources"].values())
    outbox = data["outbox"]
    oldest = outbox["oldest_due_age_seconds"] or 0
    return (
        f"backlog={backlog} outbox_pending={outbox['pending']} outbox_failed={outbox['failed']} "
        f"outbox_oldest_due={oldest:.0f}s open={data['incidents']['open']}"
    )
