"""`automatic list`, `undeliverable list|clear` and `limits`: what the loop protection did."""

from __future__ import annotations

import click

from mailproc.cli.app import EXIT_NOT_FOUND, App, fail, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.clock import utcnow
from mailproc.safety import undeliverable, views


@click.group()
def automatic() -> None:
    """Automatic mail (bounces, auto-replies, lists, loops): kept, never answered."""


@automatic.command("list")
@click.option("--kind", type=click.Choice(["bounce", "autoreply", "bulk", "loop"]))
@click.option("--limit", default=50, show_default=True, help="How many, newest first.")
@json_option
@pass_app
def automatic_list(app: App, kind: str | None, limit: int, as_json: bool) -> None:
    """List automatic mail, newest first, with why it counts as automatic."""
    mails = views.automatic_mail(app.ready_engine(), limit, kind)
    if as_json:
        echo_json(mails)
    else:
        click.echo(views.automatic_table(mails))


@click.group("undeliverable")
def undeliverable_group() -> None:
    """Addresses our mail bounced from: their bounce score, and which are suspended."""


@undeliverable_group.command("list")
@json_option
@pass_app
def undeliverable_list(app: App, as_json: bool) -> None:
    """List the addresses with a bounce score, oldest first; SUSPENDED ones get no notices
    until their probe (PROBE) or a `clear`."""
    marks = undeliverable.listing(app.ready_engine(), utcnow(), app.settings.bounces)
    if as_json:
        echo_json(marks)
    else:
        click.echo(views.addresses_table(marks))


@undeliverable_group.command("clear")
@click.argument("address")
@pass_app
def undeliverable_clear(app: App, address: str) -> None:
    """Forget ADDRESS's bounces: notifications go to it again (after the mailbox was fixed)."""
    if not undeliverable.clear(app.ready_engine(), address):
        fail(f"{address} has no bounces recorded", EXIT_NOT_FOUND)
    click.echo(f"{address.strip().lower()}: cleared; notifications go to it again")


@click.command()
@json_option
@pass_app
def limits(app: App, as_json: bool) -> None:
    """The storm breakers and the senders over the new-incident limit, in the last hour."""
    view = views.limits(app.ready_engine(), app.settings, utcnow())
    if as_json:
        echo_json(view)
    else:
        click.echo(views.limits_text(view))
