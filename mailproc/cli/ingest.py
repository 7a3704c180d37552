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
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import click

from mailproc.cli.app import EXIT_TEMPFAIL, App, describe_database_error, fail, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.config.lookup import handoff_socket
from mailproc.desk.outcome import Disposition, fields

if TYPE_CHECKING:
    from mailproc.desk.outcome import Parsed
    from mailproc.sources.files import FileMail

log = logging.getLogger(__name__)
STDIN = "<stdin>"
HANDOFF_SECONDS = 120.0  # for the daemon's answer; then this process stores the mail itself


def _not_stored_is_temporary(command: Callable[..., None]) -> Callable[..., None]:
    """Every reason the mail was not stored becomes exit 75, with the reason on stderr."""

    @wraps(command)
    def guarded(app: App, *args: Any, **kwargs: Any) -> None:
        with _exit_75(app):
            command(app, *args, **kwargs)

    return guarded


@contextmanager
def _exit_75(app: App) -> Iterator[None]:
    try:
        yield
    except (click.ClickException, click.exceptions.Exit, click.Abort):
        raise
    except Exception as exc:
        reason = _why_not_stored(exc, app)
        if reason is None:
            raise
        fail(reason, EXIT_TEMPFAIL)


def _why_not_stored(exc: Exception, app: App) -> str | None:
    """The message for a reason to try again later; None for a bug. The classes are imported
    here, after the fact: a mail handed to the daemon loads none of their modules."""
    from sqlalchemy.exc import SQLAlchemyError

    from mailproc.config.settings import ConfigError
    from mailproc.store.errors import StoreUnavailable
    from mailproc.store.schema import SchemaOutdated

    if isinstance(exc, ConfigError):
        return f"{exc}\nmail not stored: try again once the configuration is fixed"
    if isinstance(exc, SchemaOutdated | StoreUnavailable):
        return f"{app.database}: {exc}; mail not stored, try again later"
    if isinstance(exc, SQLAlchemyError):
        error = describe_database_error(exc)
        return f"{app.database}: {error}; mail not stored, try again later"
    if isinstance(exc, OSError):  # the disk full, a file system gone read-only
        return f"{exc}; mail not stored, try again later"
    return None


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--service", help="Service for new incidents (default: from the recipient address).")
@click.option("-q", "--quiet", is_flag=True, help="Print only quarantined mail and the totals.")
@click.option(
    "--mbox",
    is_flag=True,
    help="Read the files as mbox (split at 'From ' lines); else each file is one mail.",
)
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
@json_option
@pass_app
@_not_stored_is_temporary
def ingest(
    app: App,
    paths: tuple[str, ...],
    service: str | None,
    quiet: bool,
    mbox: bool,
    dry_run: bool,
    batch_size: int,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Process .eml files, folders of them, Maildirs, mbox files (--mbox), or - for one mail
    on stdin.

    Mail that cannot be parsed or applied is quarantined (stored with its reason) and reported
    on stderr: exit 0. Exit 75 (EX_TEMPFAIL) when a mail could not be stored — the database or
    the disk unavailable, the configuration or the schema not ready — so that an MTA keeps the
    mail and delivers it again later instead of bouncing it.
    """
    stdin: bytes | None = None
    socket = handoff_socket(app.config_path, os.environ) if paths == ("-",) else None
    if socket is not None and not dry_run:
        stdin = sys.stdin.buffer.read()
        answer = _offered(socket, stdin, service)
        if answer is not None:
            _report([(STDIN, answer)], quiet, dry_run, as_json)
            return
    outcomes = _applied(app, paths, stdin, service, dry_run, batch_size, jobs, mbox)
    _report(outcomes, quiet, dry_run, as_json)


def _offered(socket: Path, raw: bytes, service: str | None) -> dict[str, Any] | None:
    """The daemon's outcome for the mail, or None: no daemon took it, store it here."""
    from mailproc.runtime.handoff import HandoffBroken, Untrusted, offer

    try:
        answer = offer(socket, raw, service, HANDOFF_SECONDS)
    except HandoffBroken as exc:  # it may have stored it: here it is a duplicate then
        log.warning("the daemon at %s did not answer (%s): storing the mail here", socket, exc)
        return None
    except Untrusted as exc:
        log.warning("the socket %s is not the daemon's (%s): storing the mail here", socket, exc)
        return None
    if answer is None:
        return None
    if "unknown_service" in answer:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    if "unavailable" in answer:
        fail(f"{answer['unavailable']}; mail not stored, try again later", EXIT_TEMPFAIL)
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
    mbox: bool = False,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each mail's label and outcome, applied by this process, as each group commits."""
    from mailproc.desk.attempts import groups
    from mailproc.desk.mail import Desk
    from mailproc.desk.outcome import Origin
    from mailproc.runtime import heap
    from mailproc.sources.files import FileMail, SourceError, read_paths
    from mailproc.sources.parse_ahead import default_jobs, parsed_ahead

    if service is not None and service not in app.settings.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    desk = Desk(app.settings, app.ready_engine())
    heap.loaded()
    origin = Origin("ingest", service)
    read = [FileMail(STDIN, stdin)] if stdin is not None else read_paths(paths, mbox)
    try:
        with desk.batches(dry_run) as batcher:
            mails = parsed_ahead(
                read,
                _raw,
                app.settings.limits.max_message_bytes,
                default_jobs() if jobs is None else jobs,
                app.settings.limits.headers,
            )
            attempts = None if dry_run else desk.attempts
            while group := _next_group(mails, batch_size):  # applied as they come
                for part in groups(attempts, group, _key):
                    try:
                        with batcher(part.keys) as handle:
                            done = [
                                (m.label, handle(m.raw, origin, part.crashed.get(key, parsed)))
                                for m, parsed, key in part.items
                            ]
                    except BaseException:
                        if attempts is not None:
                            attempts.release(part)
                        raise
                    for label, outcome in done:  # committed: now it may be told
                        yield label, fields(outcome)
        released = 0 if dry_run else desk.release_due()
    except SourceError as exc:
        fail(str(exc))
    if released:
        click.echo(f"{released} reply(s) that waited for their parent in vain applied", err=True)


def _report(
    outcomes: Iterable[tuple[str, dict[str, Any]]], quiet: bool, dry_run: bool, as_json: bool
) -> None:
    """One line per mail as it is done (or one JSON document), the totals, and the exit code."""
    counts = dict.fromkeys(Disposition, 0)
    unstored = 0
    told: list[dict[str, Any]] = []
    would = "would be " if dry_run else ""
    for label, outcome in outcomes:
        counts[Disposition(outcome["disposition"])] += 1
        unstored += not outcome["stored"]
        if as_json:
            told.append({"source": label, **outcome})
        elif outcome["quarantined"]:
            click.echo(f"{label}: {would}quarantined: {outcome['summary']}", err=True)
        elif not quiet:
            click.echo(f"{label}: {'would: ' if dry_run else ''}{outcome['summary']}")
    if as_json:
        echo_json({"dry_run": dry_run, "counts": counts, "unstored": unstored, "mails": told})
    else:
        total = ", ".join(f"{n} {d.value}" for d, n in counts.items())
        click.echo(f"{'dry run, nothing stored: ' if dry_run else ''}ingested: {total}", err=True)
    if unstored:
        fail(
            f"{unstored} mail(s) could not be stored, not even in quarantine (see the log); "
            "try again later",
            EXIT_TEMPFAIL,
        )


def _raw(item: FileMail) -> bytes:
    return item.raw


Item: TypeAlias = "tuple[FileMail, Parsed, str]"
GROUP_BYTES = 64 * 1024 * 1024  # a group's mails are held until its commit


def _next_group(mails: Iterator[tuple[FileMail, Parsed]], size: int) -> list[Item]:
    """Up to `size` mails, or fewer that hold GROUP_BYTES, each with the hash of its bytes:
    the name under which a mail that kills this process is known (mailproc.desk.attempts)."""
    import hashlib

    group: list[Item] = []
    held = 0
    for mail, parsed in mails:
        group.append((mail, parsed, "sha256:" + hashlib.sha256(mail.raw).hexdigest()))
        held += len(mail.raw)
        if len(group) >= size or held >= GROUP_BYTES:
            break
    return group


def _key(item: Item) -> str:
    return item[2]
