"""A consistent copy of a SQLite database while mailproc keeps writing to it.

A plain `cp` of a database in WAL mode can copy the main file without the changes still in
the -wal file, or half of a checkpoint. SQLite's online backup API copies the pages as one
read transaction sees them (writers go on meanwhile, WAL readers do not block them), so the
copy is the database as of one commit. Everything lives in the database — incidents, their
mails and attachments, the outbox, the sources' cursors — so the copy is the whole desk.
PostgreSQL has its own tool for this (`pg_dump`, docs/admin/backup.md).
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy.engine import make_url


class NotSqlite(Exception):
    """The database is not a SQLite file: the message says what to use instead."""


def backup_sqlite(database_url: str, target: Path) -> int:
    """Copy the database to `target` (written beside it, then renamed into place); returns
    the copy's size in bytes."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise NotSqlite(
            "mailproc backup copies SQLite files; for PostgreSQL use pg_dump "
            "(docs/admin/backup.md): pg_dump --format=custom --file=FILE DATABASE"
        )
    source = Path(url.database)
    if not source.is_file():
        raise FileNotFoundError(f"no SQLite file at {source}")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        closing(sqlite3.connect(partial)) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    os.chmod(partial, 0o600)  # it holds every mail and address the desk has seen
    partial.replace(target)
    return target.stat().st_size
