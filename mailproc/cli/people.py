"""`people show ADDR`: how notices are written for one person, and why."""

from __future__ import annotations

import click

from mailproc.cli.app import App, pass_app
from mailproc.notify.readers import reader_of
from mailproc.vocabulary import Role


@click.group()
def people() -> None:
    """The people notices go to: their name, language and time zone."""


@people.command("show")
@click.argument("address")
@click.option("--service", help="For notices about this service (default: the default service).")
@pass_app
def show(app: App, address: str, service: str | None) -> None:
    """Print a person's name, language and time zone as notices use them, each with where it
    came from: their own settings, the directory, the service, its calendar or the desk."""
    settings = app.settings
    service = service or settings.default_service
    if service not in settings.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    reader = reader_of(address, settings, service)
    person = settings.people_by_email.get(reader.email)
    if person is None:
        role = "no role (reporter or other correspondent)"
    else:
        name, config = person
        serves = ", ".join(config.services) if config.role is Role.SOLVER else ""
        role = f"{config.role} (people.{name}{'; services ' + serves if serves else ''})"
    click.echo(reader.email)
    click.echo(f"  role      {role}")
    for field in ("name", "language", "zone"):
        value = getattr(reader, field) or "-"
        origin = reader.origins.get(field, "not given")
        click.echo(f"  {field:<9} {value:<20} from {origin}")
    click.echo(f"  (for notices about service {service})")
