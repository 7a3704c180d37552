"""What an incident holds: `incidents list|show|search` (the corrections, `incidents
assign|…`, join the group from mailproc.cli.corrections) and `attachments list|get`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from mailproc.cli import corrections, report
from mailproc.cli.app import EXIT_NOT_FOUND, App, fail, incident_number, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.store.queries import (
    UnknownAttachment,
    attachment_bytes,
    get_incident,
    list_attachments,
    list_incidents,
)


@click.group()
def incidents() -> None:
    """List, show and correct incidents."""


@incidents.command("list")
@click.option("--status", help="Only incidents in this status (e.g. New).")
@click.option("--service", help="Only incidents of this service.")
@json_option
@pass_app
def list_(app: App, status: str | None, service: str | None, as_json: bool) -> None:
    """List incidents, oldest first."""
    rows = list_incidents(app.ready_engine(), status, service)
    if as_json:
        echo_json(rows)
    else:
        click.echo(report.incident_table(rows))


@incidents.command("show")
@click.argument("ref")
@json_option
@pass_app
def show(app: App, ref: str, as_json: bool) -> None:
    """Show one incident (INC-n) with its whole history."""
    detail = get_incident(app.ready_engine(), incident_number(ref))
    if as_json:
        echo_json(detail)
    else:
        click.echo(report.incident_detail(detail))


@incidents.command("search")
@click.argument("text", nargs=-1, required=True)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@json_option
@pass_app
def search_(app: App, text: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Find incidents whose titles, comments and notes hold every word of TEXT (word
    prefixes, any language: no stemming), most recently active first."""
    from mailproc.store.search import search

    hits = search(app.ready_engine(), " ".join(text), limit)
    if as_json:
        echo_json(hits)
    elif not hits:
        click.echo("no incident holds all of these words")
    else:
        click.echo("\n".join(report.search_hit(hit) for hit in hits))


corrections.add_to(incidents)


@click.group()
def attachments() -> None:
    """The files that came with an incident's mails."""


@attachments.command("list")
@click.argument("ref")
@json_option
@pass_app
def list_files(app: App, ref: str, as_json: bool) -> None:
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
def get_file(app: App, ref: str, number: int, output: Path | None) -> None:
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
