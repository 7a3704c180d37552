"""The `mailproc` command: a click group whose subcommands are imported only when they run.

One process per mail (an MTA pipe) or per check (a monitoring probe) pays for every module it
imports, and the libraries behind the commands (SQLAlchemy, alembic, pydantic, Jinja, asyncio,
imapclient) cost hundreds of milliseconds together. So `COMMANDS` below names, for each
command, the module that defines it and the one line `mailproc --help` shows; the module is
imported when its command is invoked (or asked for its own --help), and `mailproc --help`
imports none of them.

To add a command: write it in a module of this package (heavy imports at that module's top or
inside the function that needs them, never here), and add its line to `COMMANDS`.
tests/cli/test_startup_imports.py checks that each line's help is the command's own, and which
modules a command loads. What the commands share (`App`, `pass_app`, `fail`, exit codes) is in
`mailproc.cli.app`.

Exit codes scripts can rely on (docs/admin/commands.md): 0 success, 1 something could not be
stored or sent, 2 usage error, 3 configuration or schema problem, 4 no such incident or problem,
5 a correction refused by the workflow; `ingest` exits 75 (EX_TEMPFAIL) whenever a mail it was
given is not stored, so an MTA keeps it and tries again; `status` uses the monitoring plugins'
0 OK, 1 WARNING, 2 CRITICAL.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from mailproc import __version__
from mailproc.cli.app import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    App,
    describe_database_error,
    fail,
)

# name: ("module:attribute" in this package, the short help `mailproc --help` lists)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("setup:init", "Create the database, or upgrade it to this version's schema."),
    "config": ("setup:config", "Inspect the configuration."),
    "workflows": (
        "setup:workflows",
        "Print the transition table of each workflow (or of SERVICE's workflow).",
    ),
    "ingest": (
        "ingest:ingest",
        "Process .eml files, folders of them, Maildirs, mbox files (--mbox), or - for one mail "
        "on stdin.",
    ),
    "run": (
        "run:run",
        "Run the daemon: every configured source, IDLE or polling, and the periodic jobs.",
    ),
    "poll": ("run:poll", "Fetch and process waiting mail from the configured sources once."),
    "serve-commands": ("run:serve_commands", ""),  # hidden: started by `run`
    "status": (
        "run:status",
        "Is mail flowing? For monitoring: exit 0 OK, 1 WARNING, 2 CRITICAL (3: configuration).",
    ),
    "metrics": (
        "operations:metrics",
        "Print the Prometheus metrics (text exposition format) read from the database.",
    ),
    "backup": (
        "operations:backup",
        "Copy the SQLite database to TARGET with SQLite's online backup API: consistent while "
        "the daemon, `ingest` or cron jobs write.",
    ),
    "oauth2-token": (
        "operations:oauth2_token",
        "Print an OAuth2 access token for XOAUTH2 (exit 1 when the endpoint refuses).",
    ),
    "incidents": ("incidents:incidents", "List, show and correct incidents."),
    "attachments": ("incidents:attachments", "The files that came with an incident's mails."),
    "problems": (
        "problems:problems",
        "Manage known problems (PRB-n) that incidents can be related to.",
    ),
    "export": (
        "export:export",
        "Write every incident (fields, history, Message-IDs of its mails) as JSON Lines.",
    ),
    "sla": ("sla:sla", "Service levels: due times and escalations."),
    "escalate": (
        "sla:escalate",
        "Mail the SLA escalation levels whose time has come (queued in the outbox; "
        "`send --once` or the daemon delivers them).",
    ),
    "send": ("notify:send", "Send queued notifications through the configured SMTP server."),
    "digest": (
        "notify:digest",
        "Queue the queue digests due now (each solver's and each team's open incidents, at the "
        "times of [digest]); `send --once` or the daemon delivers them.",
    ),
    "templates": ("notify:templates", "Check and preview the notification templates."),
    "people": ("notify:people", "The people notices go to: their name, language and time zone."),
    "automatic": (
        "safety:automatic",
        "Automatic mail (bounces, auto-replies, lists, loops): kept, never answered.",
    ),
    "undeliverable": (
        "safety:undeliverable_group",
        "Addresses our mail bounced from: their bounce score, and which are suspended.",
    ),
    "limits": (
        "safety:limits",
        "The storm breakers and the senders over the new-incident limit, in the last hour.",
    ),
    "demo": (
        "demo:demo",
        "Run sample mails through mailproc and print the incidents and their histories.",
    ),
}


def load(name: str) -> click.Command:
    """Import the module of command `name` and return the command."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    found = getattr(importlib.import_module(f"mailproc.cli.{module}"), attribute)
    assert isinstance(found, click.Command), f"{name}: {found!r} is not a click command"
    return found


class _Group(click.Group):
    """Loads a subcommand's module when it is invoked, lists the commands from the table, and
    turns the errors a person can act on into one line and an exit code, not a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return load(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        listed = [name for name in self.list_commands(ctx) if COMMANDS[name][1]]  # not hidden
        limit = formatter.width - 6 - max(len(name) for name in listed)
        rows = [  # shortened as click shortens a loaded command's help
            (name, click.Command(name, help=COMMANDS[name][1]).get_short_help_str(limit))
            for name in listed
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            app = ctx.find_object(App)
            explained = _explain(exc, app.database if app is not None else "the database")
            if explained is None:
                raise
            fail(*explained)


def _explain(exc: Exception, database: str) -> tuple[str, int] | None:
    """The line and exit code for an error a person can act on; None for a bug. The error
    classes are imported here, after the fact, so no command loads their modules for this.
    `database` names it (without its password) in the database's errors."""
    from sqlalchemy.exc import SQLAlchemyError

    from mailproc.config.settings import ConfigError
    from mailproc.desk.problems import UnknownProblem
    from mailproc.store.errors import StoreUnavailable
    from mailproc.store.queries import UnknownIncident
    from mailproc.store.schema import SchemaOutdated

    if isinstance(exc, ConfigError):
        return str(exc), EXIT_CONFIG
    if isinstance(exc, SchemaOutdated):
        return f"{database}: {exc}", EXIT_CONFIG
    if isinstance(exc, UnknownIncident | UnknownProblem):
        return str(exc.args[0]), EXIT_NOT_FOUND
    if isinstance(exc, StoreUnavailable):
        return f"{database} unavailable: {exc}", EXIT_FAILED
    if isinstance(exc, SQLAlchemyError):
        return f"{database}: {describe_database_error(exc)}", EXIT_FAILED
    return None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration file (default: $MAILPROC_CONFIG, else config/mailproc.toml, "
    "else /etc/mailproc/mailproc.toml).",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="INFO",
    show_default=True,
    envvar="MAILPROC_LOG_LEVEL",
    help="Also $MAILPROC_LOG_LEVEL.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
    envvar="MAILPROC_LOG_FORMAT",
    help="Also $MAILPROC_LOG_FORMAT.",
)
@click.version_option(__version__, prog_name="mailproc")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, log_level: str, log_format: str) -> None:
    """mailproc — e-mail driven incident management (ITIL)."""
    from mailproc.runtime import logs

    logs.setup(log_level, log_format)
    ctx.obj = App(config_path)


def command() -> click.Group:
    """The whole command tree (its subcommands load when they are looked up)."""
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    """The `mailproc` program; `argv` None: this process's arguments, and then a quick command
    may be run by the daemon's command server instead of here (`served`)."""
    from mailproc.runtime import heap

    heap.loading()
    if argv is None:
        code = served(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    command().main(args=argv, prog_name="mailproc")


# Commands (or a group's subcommands) that read and print, done in moments once started: the
# daemon's command server runs them when `daemon.command_socket` is set (`serve-commands` in
# mailproc.cli.run). Not those that run long or act on signals (run, poll, send, ingest …).
SERVED = frozenset(
    {
        ("status",),
        ("metrics",),
        ("workflows",),
        ("limits",),
        ("incidents", "list"),
        ("incidents", "show"),
        ("problems", "list"),
        ("problems", "show"),
        ("attachments", "list"),
        ("sla", "what-if"),
        ("sla", "report"),
        ("sla", "explain"),
        ("config", "check"),
    }
)
_GROUP_OPTIONS = ("--config", "--log-level", "--log-format")  # each takes a value


def served(args: list[str]) -> int | None:
    """The exit code of `mailproc ARGS` run by the daemon's command server, or None when it is
    not a served command, no server is configured or listening, or it refused (then nothing
    ran, and this process runs the command)."""
    config, rest = _group_options(args)
    if not rest or not ((rest[0],) in SERVED or tuple(rest[:2]) in SERVED):
        return None
    from mailproc.config.lookup import command_socket

    where = command_socket(config, os.environ)
    if where is None:
        return None
    from mailproc.runtime.handoff import HandoffBroken, run_elsewhere

    try:
        return run_elsewhere(where, args)
    except HandoffBroken as exc:
        fail(f"the command server at {where} broke off: {exc}")


def _group_options(args: list[str]) -> tuple[Path | None, list[str]]:
    """The --config given, and what follows the group's options; an option this cannot read
    (--help, --version, a typo) leaves nothing to serve, so click reads it."""
    config: Path | None = None
    at = 0
    while at < len(args) and args[at].startswith("-"):
        name, equals, value = args[at].partition("=")
        if name not in _GROUP_OPTIONS or (not equals and at + 1 >= len(args)):
            return None, []
        if not equals:
            at, value = at + 1, args[at + 1]
        if name == "--config":
            config = Path(value)
        at += 1
    return config, args[at:]
