"""`init`, `config check|example` and `workflows`: set up and inspect a deployment."""

from __future__ import annotations

import os
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from mailproc.cli.app import EXIT_CONFIG, EXIT_FAILED, App, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.config.locale import text_in
from mailproc.config.settings import ConfigError
from mailproc.sources.health import Check
from mailproc.store.schema import head_revision, upgrade
from mailproc.vocabulary import StatusKind


@click.command()
@json_option
@pass_app
def init(app: App, as_json: bool) -> None:
    """Create the database, or upgrade it to this version's schema."""
    upgrade(app.engine)
    if as_json:
        echo_json({"database": app.database, "revision": head_revision()})
    else:
        click.echo(f"database ready at revision {head_revision()}")


@click.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("check")
@click.option(
    "--connect",
    is_flag=True,
    help="Also reach the database, every mail source and the SMTP server (changes nothing).",
)
@json_option
@pass_app
def config_check(app: App, connect: bool, as_json: bool) -> None:
    """The preflight: configuration, secrets, named files, templates (and with --connect the
    servers), every problem at once, one line each.

    Exit 0 when all pass, 3 when a local check fails (configuration, secret, file, template),
    1 when only a --connect check fails (a server unreachable or refusing).
    """
    from mailproc.daemon.preflight import connect_checks, offline_checks

    reached: list[Check] = []
    try:
        settings = app.settings
    except ConfigError as exc:
        local = [Check("configuration", False, line) for line in str(exc).splitlines()]
    else:
        local = offline_checks(settings, os.environ)
        reached = connect_checks(settings, os.environ) if connect else []
    checks = local + reached
    failed = [c for c in checks if not c.healthy]
    if as_json:
        echo_json({"ok": not failed, "checks": checks})
    else:
        for check in checks:
            click.echo(f"{'ok  ' if check.healthy else 'FAIL'}  {check.name}: {check.detail}")
        total = len(checks)
        click.echo(f"{len(failed)} of {total} checks failed" if failed else f"all {total} passed")
    if any(not c.healthy for c in local):
        sys.exit(EXIT_CONFIG)
    if failed:
        sys.exit(EXIT_FAILED)


@config.command("example")
@click.option("--systemd", is_flag=True, help="Print the systemd unit instead.")
def config_example(systemd: bool) -> None:
    """Print the commented example configuration (or the hardened systemd unit) that ships
    with mailproc: `mailproc config example > /etc/mailproc/mailproc.toml`."""
    click.echo(shipped_file("mailproc.service" if systemd else "mailproc.example.toml"), nl=False)


def shipped_file(name: str) -> str:
    """A file of the checkout's config/ folder, which the wheel carries as mailproc/_data/."""
    package = Path(str(resources.files("mailproc")))
    for folder in (package / "_data", package.parent / "config"):
        if (folder / name).is_file():
            return (folder / name).read_text("utf-8")
    raise click.ClickException(f"{name} is missing from this installation of mailproc")


@click.command()
@click.argument("service", required=False)
@json_option
@pass_app
def workflows(app: App, service: str | None, as_json: bool) -> None:
    """Print the transition table of each workflow (or of SERVICE's workflow)."""
    s = app.settings
    names = [s.services[service].workflow] if service in s.services else sorted(s.workflows)
    if service and service not in s.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="SERVICE")
    if as_json:
        echo_json({name: _workflow_json(app, name) for name in names})
        return
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
            language = app.settings.locale.language
            text = text_in(status.instructions, language, language)
            click.echo(f"      instructions: {text}")
        click.echo("")


def _workflow_json(app: App, name: str) -> dict[str, Any]:
    s = app.settings
    wf = s.workflows[name]
    return {
        "description": wf.description,
        "services": sorted(n for n, svc in s.services.items() if svc.workflow == name),
        "initial": wf.initial,
        "reopen_to": wf.reopen_to,
        "statuses": [
            {
                "name": status.name,
                "kind": status.kind,
                "instructions": status.instructions,
                "commands": {
                    verb: table[status.name]
                    for verb, table in wf.transitions.items()
                    if status.name in table
                },
            }
            for status in wf.statuses
        ],
    }
