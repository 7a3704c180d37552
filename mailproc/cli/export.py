"""`export`: incidents as JSON Lines on stdout."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from mailproc.cli.app import App, pass_app
from mailproc.store.export import write_jsonl


@click.command()
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    help="Only incidents changed at or after this UTC date/time.",
)
@click.option(
    "--public",
    is_flag=True,
    help="For the reporter's eyes: leave out internal notes and the other internal records.",
)
@pass_app
def export(app: App, since: datetime | None, public: bool) -> None:
    """Write every incident (fields, history, Message-IDs of its mails) as JSON Lines."""
    count = write_jsonl(
        app.ready_engine(), sys.stdout, since.replace(tzinfo=UTC) if since else None, public
    )
    click.echo(f"exported {count} incidents", err=True)
