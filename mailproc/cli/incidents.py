"""`incidents list` and `incidents show`; the corrections (`incidents assign|…`) join the
group from mailproc.cli.corrections."""

from __future__ import annotations

import click

from mailproc.cli import corrections, report
from mailproc.cli.app import App, incident_number, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.store.queries import get_incident, list_incidents


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
