"""`incidents list` and `incidents show`."""

from __future__ import annotations

import re

import click

from mailproc.cli import report
from mailproc.cli.app import App, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.store.queries import get_incident, list_incidents

_REF = re.compile(r"^(?:INC-?)?(\d+)$", re.IGNORECASE)


def incident_number(value: str) -> int:
    match = _REF.match(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not an incident reference like INC-42")
    return int(match.group(1))


@click.group()
def incidents() -> None:
    """List and show incidents."""


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
