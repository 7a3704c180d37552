"""`ingest`: process mail from files, folders, Maildirs, mbox files or stdin (for an MTA pipe)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from mailproc.cli.app import EXIT_TEMPFAIL, App, describe_database_error, fail, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.config.settings import ConfigError
from mailproc.desk.attempts import groups
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition, Origin, Outcome, Parsed
from mailproc.sources.files import FileMail, SourceError, read_paths
from mailproc.sources.parse_ahead import default_jobs, parsed_ahead
from mailproc.store.errors import StoreUnavailable
from mailproc.store.schema import SchemaOutdated


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
    except ConfigError as exc:
        fail(f"{exc}\nmail not stored: try again once the configuration is fixed", EXIT_TEMPFAIL)
    except (SchemaOutdated, StoreUnavailable) as exc:
        fail(f"{app.database}: {exc}; mail not stored, try again later", EXIT_TEMPFAIL)
    except SQLAlchemyError as exc:
        fail(
            f"{app.database}: {describe_database_error(exc)}; mail not stored, try again later",
            EXIT_TEMPFAIL,
        )
    except OSError as exc:  # the disk full, a file system gone read-only
        fail(f"{exc}; mail not stored, try again later", EXIT_TEMPFAIL)


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
    if service is not None and service not in app.settings.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    desk = Desk(app.settings, app.ready_engine())
    origin = Origin("ingest", service)
    counts = dict.fromkeys(Disposition, 0)
    unstored = 0
    told: list[dict[str, Any]] = []
    would = "would be " if dry_run else ""
    try:
        with desk.batches(dry_run) as batcher:
            mails = parsed_ahead(
                read_paths(paths, mbox),
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
                        counts[outcome.disposition] += 1
                        unstored += not outcome.stored
                        if as_json:
                            told.append({"source": label, **_outcome(outcome)})
                        elif outcome.quarantined:
                            click.echo(f"{label}: {would}quarantined: {outcome.summary}", err=True)
                        elif not quiet:
                            click.echo(f"{label}: {'would: ' if dry_run else ''}{outcome.summary}")
        released = 0 if dry_run else desk.release_due()
    except SourceError as exc:
        fail(str(exc))
    if released and not as_json:
        click.echo(f"{released} reply(s) that waited for their parent in vain applied", err=True)
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


def _outcome(outcome: Outcome) -> dict[str, Any]:
    return {
        "disposition": outcome.disposition,
        "incident": outcome.incident,
        "summary": outcome.summary,
        "quarantined": outcome.quarantined,
        "automatic": outcome.automatic,
        "stored": outcome.stored,
    }


def _raw(item: FileMail) -> bytes:
    return item.raw


Item = tuple[FileMail, Parsed, str]
GROUP_BYTES = 64 * 1024 * 1024  # a group's mails are held until its commit


def _next_group(mails: Iterator[tuple[FileMail, Parsed]], size: int) -> list[Item]:
    """Up to `size` mails, or fewer that hold GROUP_BYTES, each with the hash of its bytes:
    the name under which a mail that kills this process is known (mailproc.desk.attempts)."""
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
