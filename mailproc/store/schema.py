"""Create or upgrade the database with alembic, and check a database is at the code's revision.

The migrations ship inside the package so that an installed mailproc can upgrade its own
database without a source checkout. They run in one transaction under a lock, so that hosts
starting together (the unit's `ExecStartPre=mailproc init` on each of several daemons) upgrade
once and the others find the work done: PostgreSQL's transaction-scoped advisory lock, and on
SQLite the write lock that `BEGIN IMMEDIATE` takes (mailproc.store.db).
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text


class SchemaOutdated(Exception):
    """The database is not at the revision this code expects; `mailproc init` fixes it."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("mailproc.store") / "migrations"))
    return config


#: The advisory lock's key on PostgreSQL: any constant of our own (b"mailproc" as an integer).
MIGRATION_LOCK = 0x6D61696C70726F63


def upgrade(engine: Engine) -> None:
    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # held until this transaction ends
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def check_current(engine: Engine) -> None:
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head_revision():
        raise SchemaOutdated(
            f"the database is at revision {current or 'none (empty)'}, this mailproc needs "
            f"{head_revision()}: run `mailproc init`"
        )
