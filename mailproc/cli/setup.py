"""`init`, `config check` and `workflows`: set up and inspect a deployment."""

from __future__ import annotations

import click

from mailproc.cli.app import App, pass_app
from mailproc.store.schema import head_revision, upgrade
from mailproc.vocabulary import StatusKind


@click.command()
@pass_app
def init(app: App) -> None:
    """Create the database, or upgrade it to this version's schema."""
    upgrade(app.engine)
    click.echo(f"database ready at revision {head_revision()}")


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@pass_app
def config_check(app: App) -> None:
    """Validate the configuration and summarise it."""
    s = app.settings
    click.echo(f"{s.source}: valid")
    click.echo(f"  services: {', '.join(sorted(s.services))} (default {s.default_service})")
    click.echo(f"  people: {', '.join(sorted(s.people)) or 'none'}")
    click.echo(f"  workflows: {', '.join(sorted(s.workflows))}")
    click.echo(f"  calendars: {', '.join(sorted(s.calendars))} (default {s.sla.calendar})")


@click.command()
@click.argument("service", required=False)
@pass_app
def workflows(app: App, service: str | None) -> None:
    """Print the transition table of each workflow (or of SERVICE's workflow)."""
    s = app.settings
    names = [s.services[service].workflow] if service in s.services else sorted(s.workflows)
    if service and service not in s.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="SERVICE")
    for name in names:
        wf = s.workflows[name]
        users = ", ".join(n for n, svc in sorted(s.services.items()) if svc.workflow == name)
        click.echo(f"workflow {name}: {wf.description} (services: {users or 'none'})")
        for status in wf.statuses:
            moves = [
                f"[{verb}] → {table[status.name]}"
                for verb, table in wf.transitions.items()
                if status.name in table
            ]
            if status.kind is StatusKind.OPEN:
                moves.append("[ACK]")  # changes no status, accepted in every open status
            click.echo(f"  {status.name} ({status.kind}): {', '.join(moves) or 'no commands'}")
            click.echo(f"      instructions: {status.instructions}")
        click.echo("")
