"""`run` (the daemon), `poll --once` (one pass, for cron) and `status` (for monitoring)."""

from __future__ import annotations

import json
import os
import signal
import sys

import click

from mailproc.cli.app import App, fail, pass_app
from mailproc.clock import utcnow
from mailproc.config.settings import load_settings
from mailproc.daemon.loop import Daemon, poll_once
from mailproc.runtime.progress import progress_factory
from mailproc.runtime.wake import Wake
from mailproc.sources.health import status_checks

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
@pass_app
def poll(app: App, once: bool, dry_run: bool, names: tuple[str, ...]) -> None:
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
    for result in results:
        click.echo(f"{result.source}: {result.text}")
    if not all(result.ok for result in results):
        sys.exit(EXIT_UNHEALTHY)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Is mail flowing? Exit 0 when every source was polled successfully of late, else 1.

    Reads what the daemon (or poll --once) recorded in the database: last successful poll,
    last failure, backlog. For a monitoring check; the limit is daemon.status_max_age_seconds.
    """
    checks = status_checks(app.settings, app.ready_engine(), utcnow())
    healthy = all(check.healthy for check in checks)
    if as_json:
        data = {
            "healthy": healthy,
            "checks": [{"name": c.name, "healthy": c.healthy, "detail": c.detail} for c in checks],
        }
        click.echo(json.dumps(data, indent=2))
    else:
        for check in checks:
            click.echo(f"{check.name}: {'OK' if check.healthy else 'FAIL'} {check.detail}")
    if not healthy:
        sys.exit(EXIT_UNHEALTHY)
