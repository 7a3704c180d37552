"""`ingest`: process mail from files, folders, Maildirs, mbox files or stdin (for an MTA pipe)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import click

from mailproc.cli import App, fail, pass_app
from mailproc.service import Desk, Disposition, Origin, StoreUnavailable
from mailproc.sources.files import FileMail, SourceError, read_paths


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
@pass_app
def ingest(
    app: App,
    paths: tuple[str, ...],
    service: str | None,
    quiet: bool,
    dry_run: bool,
    batch_size: int,
) -> None:
    """Process .eml files, folders of them, Maildirs, mbox files, or - for one mail on stdin.

    Mail that cannot be parsed or applied is quarantined (stored with its reason) and reported
    on stderr; the exit code is non-zero only when something could not be stored.
    """
    if service is not None and service not in app.settings.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    desk = Desk(app.settings, app.ready_engine())
    origin = Origin("ingest", service)
    counts = dict.fromkeys(Disposition, 0)
    unstored = 0
    would = "would be " if dry_run else ""
    try:
        with desk.batches(dry_run) as batcher:
            for group in batched(read_paths(paths), batch_size):
                with batcher() as handle:
                    done = [(item.label, handle(item.raw, origin)) for item in group]
                for label, outcome in done:  # committed: now it may be told
                    counts[outcome.disposition] += 1
                    unstored += not outcome.stored
                    if outcome.quarantined:
                        click.echo(f"{label}: {would}quarantined: {outcome.summary}", err=True)
                    elif not quiet:
                        click.echo(f"{label}: {'would: ' if dry_run else ''}{outcome.summary}")
    except SourceError as exc:
        fail(str(exc))
    except StoreUnavailable as exc:
        fail(f"could not store mail, stopped: {exc}")
    total = ", ".join(f"{n} {d.value}" for d, n in counts.items())
    click.echo(f"{'dry run, nothing stored: ' if dry_run else ''}ingested: {total}", err=True)
    if unstored:
        fail(f"{unstored} mail(s) could not be stored, not even in quarantine (see the log)")


def batched(items: Iterable[FileMail], size: int) -> Iterator[list[FileMail]]:
    group: list[FileMail] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


COMMANDS = [ingest]
