"""`attachments list INC-n` and `attachments get INC-n N [-o FILE]`: the files of an incident."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailproc.cli import report
from mailproc.cli.app import EXIT_NOT_FOUND, App, fail, pass_app
from mailproc.cli.incidents import incident_number
from mailproc.cli.output import echo_json, json_option
from mailproc.store.queries import (
    UnknownAttachment,
    attachment_bytes,
    list_attachments,
)


@click.group()
def attachments() -> None:
    """The files that came with an incident's mails."""


@attachments.command("list")
@click.argument("ref")
@json_option
@pass_app
def list_(app: App, ref: str, as_json: bool) -> None:
    """List an incident's attachments, numbered in the order they came."""
    found = list_attachments(app.ready_engine(), incident_number(ref))
    if as_json:
        echo_json(found)
    elif not found:
        click.echo(f"{ref.upper()} has no attachments")
    else:
        click.echo("\n".join(report.attachment_line(a).strip() for a in found))


@attachments.command("get")
@click.argument("ref")
@click.argument("number", type=click.IntRange(min=1))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the bytes to this file (default: standard output).",
)
@pass_app
def get(app: App, ref: str, number: int, output: Path | None) -> None:
    """Write the bytes of attachment NUMBER of incident REF."""
    try:
        found, content = attachment_bytes(app.ready_engine(), incident_number(ref), number)
    except UnknownAttachment as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(content)
    click.echo(f"wrote {output} ({len(content)} bytes, {found.content_type})", err=True)
