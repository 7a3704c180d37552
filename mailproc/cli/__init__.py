"""The `mailproc` command: assembles the click group from the subcommand modules.

What the commands share (`App`, `pass_app`, `fail`) is in `mailproc.cli.app`.

Exit codes scripts can rely on: 0 success, 1 something could not be stored or sent,
2 usage error, 3 configuration or schema problem, 4 no such incident or problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from mailproc.cli.app import EXIT_CONFIG, EXIT_NOT_FOUND, App, fail
from mailproc.config.settings import ConfigError
from mailproc.desk.problems import UnknownProblem
from mailproc.runtime import logs
from mailproc.store.errors import StoreUnavailable
from mailproc.store.queries import UnknownIncident
from mailproc.store.schema import SchemaOutdated


class _Group(click.Group):
    """Turns the errors a person can act on into one line and an exit code, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (ConfigError, SchemaOutdated) as exc:
            fail(str(exc), EXIT_CONFIG)
        except (UnknownIncident, UnknownProblem) as exc:
            fail(str(exc.args[0]), EXIT_NOT_FOUND)
        except StoreUnavailable as exc:
            fail(f"database unavailable: {exc}")
        except SQLAlchemyError as exc:
            fail(f"database error: {exc.__class__.__name__}: {getattr(exc, 'orig', exc)}")


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Configuration file (default: $MAILPROC_CONFIG, else config/mailproc.toml, "
    "else the embedded defaults).",
)
@click.option("--log-level", default="INFO", show_default=True, help="DEBUG, INFO, WARNING…")
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.version_option(package_name="mailproc")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, log_level: str, log_format: str) -> None:
    """mailproc — e-mail driven incident management (ITIL)."""
    logs.setup(log_level, log_format)
    ctx.obj = App(config_path)


def command() -> click.Group:
    """The whole command tree: the group and every subcommand module's COMMANDS."""
    from mailproc.cli import (
        attachments,
        demo,
        export,
        incidents,
        ingest,
        notify,
        problems,
        run,
        safety,
        setup,
        sla,
    )

    modules = (setup, ingest, run, incidents, attachments, problems, export, sla, notify, safety)
    for module in (*modules, demo):
        for sub in module.COMMANDS:
            cli.add_command(sub)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    command().main(args=argv, prog_name="mailproc")
