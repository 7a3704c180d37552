"""What every command shares: the lazily loaded `App`, `pass_app`, `fail` and the exit codes.

Apart from the package's `__init__` (which only assembles the command tree) so that the
subcommand modules import this and the tree imports them, never the other way round. Cheap to
import: the configuration, the database and their libraries load when a command first asks.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.exc import SQLAlchemyError

    from mailproc.config.settings import Settings

EXIT_FAILED, EXIT_CONFIG, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_TEMPFAIL = 1, 3, 4, 5, 75
_REF = re.compile(r"^(?:INC-?)?(\d+)$", re.IGNORECASE)


@dataclass
class App:
    """What every command needs, loaded on first use so `--help` never touches config or DB."""

    config_path: Path | None
    _settings: Settings | None = None
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from mailproc.config.settings import load_settings

            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from mailproc.store.db import make_engine

            self._engine = make_engine(self.settings.database_url)
        return self._engine

    def ready_engine(self) -> Engine:
        from mailproc.store.schema import check_current

        check_current(self.engine)
        return self.engine

    @property
    def database(self) -> str:
        """The database for an error message (without its password)."""
        if self._settings is None:
            return "the database"
        from mailproc.config.paths import database_name

        return database_name(self._settings.database_url)


pass_app = click.make_pass_decorator(App)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    click.echo(f"mailproc: {message}", err=True)
    sys.exit(code)


def incident_number(value: str) -> int:
    """INC-42, inc42 or 42 as 42; anything else is a usage error."""
    match = _REF.match(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not an incident reference like INC-42")
    return int(match.group(1))


def describe_database_error(exc: SQLAlchemyError) -> str:
    """One line: the driver's own words, without SQLAlchemy's statement dump."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {detail[0] if detail else ''}"
