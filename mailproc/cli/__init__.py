"""The `mailproc` command: a click group whose subcommands live in small modules.

Exit codes scripts can rely on: 0 success, 1 something could not be stored or sent,
2 usage error, 3 configuration or schema problem, 4 no such incident or problem.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from mailproc.config.settings import ConfigError, Settings, load_settings
from mailproc.desk.mail import StoreUnavailable
from mailproc.desk.problems import UnknownProblem
from mailproc.runtime import logs
from mailproc.store.db import make_engine
from mailproc.store.queries import UnknownIncident
from mailproc.store.schema import SchemaOutdated, check_current

EXIT_FAILED, EXIT_CONFIG, EXIT_NOT_FOUND = 1, 3, 4

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command needs, loaded on first use so `--help` never touches config or DB."""

    config_path: Path | None
    _settings: Settings | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def ready_engine(self) -> Engine:
        check_current(self.engine)
        return self.engine


pass_app = click.make_pass_decorator(App)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"mailproc: {message}", err=True)
    sys.exit(code)


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
    """The whole command tree; subcommand modules import this one, so they join late."""
    from mailproc.cli import (
        demo,
        export,
        incidents,
        ingest,
        notify,
        people,
        problems,
        run,
        safety,
        setup,
        sla,
    )

    modules = (setup, ingest, run, incidents, problems, export, sla, notify, people, safety, demo)
    for module in modules:
        for sub in module.COMMANDS:
            cli.add_command(sub)
    return cli


def main(argv: Sequence[str] | None = None) -> None:
    command().main(args=argv, prog_name="mailproc")
