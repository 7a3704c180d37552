"""Create or upgrade the database with alembic, and check a database is at the code's revision.

The migrations ship inside the package so that an installed mailproc can upgrade its own
database without a source checkout. Only `init` and `upgrade` need alembic (and its import costs
more than storing a mail): the check every other command makes before it touches the database
reads the revision table with one query and finds the code's head revision in the migration
files' `revision`/`down_revision` lines.

Migrations run in one transaction under a lock, so that hosts starting together (the unit's
`ExecStartPre=mailproc init` on each of several daemons) upgrade once and the others find the
work done: PostgreSQL's transaction-scoped advisory lock, and on SQLite the write lock that
`BEGIN IMMEDIATE` takes (mailproc.store.db).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

_LINE = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*['"]?([\w-]*)['"]?""", re.M)


class SchemaOutdated(Exception):
    """The database is not at the revision this code expects; `mailproc init` fixes it."""


def _folder() -> str:
    return str(resources.files("mailproc.store") / "migrations")


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _folder())
    return config


#: The advisory lock's key on PostgreSQL: any constant of our own (b"mailproc" as an integer).
MIGRATION_LOCK = 0x6D61696C70726F63


def upgrade(engine: Engine) -> None:
    from alembic import command

    config = _config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # held until this transaction ends
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@cache
def head_revision() -> str:
    """The revision no migration revises (what alembic calls the head), from the files."""
    revised: set[str] = set()
    revisions: set[str] = set()
    for script in (resources.files("mailproc.store") / "migrations" / "versions").iterdir():
        if not script.name.endswith(".py"):
            continue
        found = {m[1]: m[2] for m in _LINE.finditer(script.read_text("utf-8"))}
        revisions.add(found["revision"])
        if found.get("down_revision"):
            revised.add(found["down_revision"])
    heads = revisions - revised
    if len(heads) != 1:
        raise RuntimeError(f"migrations: expected one head revision, found {sorted(heads)}")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """What alembic recorded; None for an empty database. A database that cannot be reached
    raises, as any query would."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
    return None if row is None else str(row[0])


def check_current(engine: Engine) -> None:
    current = current_revision(engine)
    if current != head_revision():
        raise SchemaOutdated(
            f"the database is at revision {current or 'none (empty)'}, this mailproc needs "
            f"{head_revision()}: run `mailproc init`"
        )
