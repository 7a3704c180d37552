"""`ingest`: process mail from files, folders, Maildirs, mbox files or stdin (for an MTA pipe).

`ingest -` of one mail, as an MTA pipe runs it once per mail, first offers the mail to the
running daemon when the configuration names `daemon.socket` (mailproc.daemon.listener): then this
process loads neither the database nor the validated settings, and the daemon applies the mail.
With no daemon there, it applies the mail itself, as every other `ingest` does.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mailproc.cli.app import App, fail, pass_app
from mailproc.config.paths import handoff_socket
from mailproc.desk.outcome import Disposition

if TYPE_CHECKING:
    from mailproc.sources.files import FileMail

log = logging.getLogger(__name__)
STDIN = "<stdin>"
HANDOFF_SECONDS = 120.0  # for the daemon's answer; then this process stores the mail itself


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--service", help="Service for new incidents (default: from the recipient address).")
@click.option("-q", "--quiet", is_flag=True, help="Print only quarantined mail and the totals.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Shadow mode: report what would happen; store nothing (see README on locking).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=500,
    show_default=True,
    help="Mails committed together (group commit); each is still applied on its own.",
)
@click.option(
    "--jobs",
    type=click.IntRange(0, 64),
    default=None,
    help="Worker processes that parse ahead of the database work "
    "(default: the cores but one; 0: none). Used from 64 mails on.",
)
@pass_app
def ingest(
    app: App,
    paths: tuple[str, ...],
    service: str | None,
    quiet: bool,
    dry_run: bool,
    batch_size: int,
    jobs: int | None,
) -> None:
    """Process .eml files, folders of them, Maildirs, mbox files, or - for one mail on stdin.

    Mail that cannot be parsed or applied is quarantined (stored with its reason) and reported
    on stderr; the exit code is non-zero only when something could not be stored.
    """
    stdin: bytes | None = None
    socket = handoff_socket(app.config_path, os.environ) if paths == ("-",) else None
    if socket is not None and not dry_run:
        stdin = sys.stdin.buffer.read()
        answer = _offered(socket, stdin, service)
        if answer is not None:
            _report([(STDIN, answer)], quiet, dry_run)
            return
    report = _applied(app, paths, stdin, service, dry_run, batch_size, jobs)
    _report(report, quiet, dry_run)


def _offered(socket: Path, raw: bytes, service: str | None) -> dict[str, Any] | None:
    """The daemon's outcome for the mail, or None: no daemon took it, store it here."""
    from mailproc.runtime.handoff import HandoffBroken, offer

    try:
        answer = offer(socket, raw, service, HANDOFF_SECONDS)
    except HandoffBroken as exc:  # it may have stored it: here it is a duplicate then
        log.warning("the daemon at %s did not answer (%s): storing the mail here", socket, exc)
        return None
    if answer is None:
        return None
    if "unknown_service" in answer:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    if "unavailable" in answer:
        fail(f"could not store mail, stopped: {answer['unavailable']}")
    if "disposition" not in answer:  # refused (too large for the socket, a fault): do it here
        log.warning("the daemon at %s refused the mail (%s): storing it here", socket, answer)
        return None
    return answer


def _applied(
    app: App,
    paths: tuple[str, ...],
    stdin: bytes | None,
    service: str | None,
    dry_run: bool,
    batch_size: int,
    jobs: int | None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each mail's label and outcome, applied by this process, as each group commits."""
    from mailproc.desk.mail import Desk
    from mailproc.desk.outcome import Origin
    from mailproc.sources.files import FileMail, SourceError, read_paths
    from mailproc.sources.parse_ahead import default_jobs, parsed_ahead
    from mailproc.store.errors import StoreUnavailable

    if service is not None and service not in app.settings.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    desk = Desk(app.settings, app.ready_engine())
    origin = Origin("ingest", service)
    read = [FileMail(STDIN, stdin)] if stdin is not None else read_paths(paths)
    try:
        with desk.batches(dry_run) as batcher:
            mails = parsed_ahead(
                read,
                _raw,
                app.settings.limits.max_message_bytes,
                default_jobs() if jobs is None else jobs,
            )
            while True:  # mails are applied as they come, parsed ahead by the workers
                with batcher() as handle:
                    group = islice(mails, batch_size)
                    done = [(m.label, handle(m.raw, origin, parsed)) for m, parsed in group]
                if not done:
                    break
                for label, outcome in done:  # committed: now it may be told
                    yield (
                        label,
                        {
                            "disposition": outcome.disposition.value,
                            "summary": outcome.summary,
                            "quarantined": outcome.quarantined,
                            "stored": outcome.stored,
                        },
                    )
    except SourceError as exc:
        fail(str(exc))
    except StoreUnavailable as exc:
        fail(f"could not store mail, stopped: {exc}")


def _report(outcomes: Iterable[tuple[str, dict[str, Any]]], quiet: bool, dry_run: bool) -> None:
    """One line per mail as it is done, the totals, and the exit code."""
    counts = dict.fromkeys(Disposition, 0)
    unstored = 0
    would = "would be " if dry_run else ""
    for label, outcome in outcomes:
        counts[Disposition(outcome["disposition"])] += 1
        unstored += not outcome["stored"]
        if outcome["quarantined"]:
            click.echo(f"{label}: {would}quarantined: {outcome['summary']}", err=True)
        elif not quiet:
            click.echo(f"{label}: {'would: ' if dry_run else ''}{outcome['summary']}")
    total = ", ".join(f"{n} {d.value}" for d, n in counts.items())
    click.echo(f"{'dry run, nothing stored: ' if dry_run else ''}ingested: {total}", err=True)
    if unstored:
        fail(f"{unstored} mail(s) could not be stored, not even in quarantine (see the log)")


def _raw(item: FileMail) -> bytes:
    return item.raw
