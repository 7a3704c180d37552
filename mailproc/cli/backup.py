"""`backup FILE`: a consistent copy of a SQLite database, safe while the daemon runs."""

from __future__ import annotations

from pathlib import Path

import click

from mailproc.cli.app import EXIT_CONFIG, App, fail, pass_app
from mailproc.cli.output import echo_json, json_option


@click.command()
@click.argument("target", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace TARGET if it exists.")
@json_option
@pass_app
def backup(app: App, target: Path, force: bool, as_json: bool) -> None:
    """Copy the SQLite database to TARGET with SQLite's online backup API: consistent while
    the daemon, `ingest` or cron jobs write. It holds everything: incidents, mails,
    attachments, the outbox. Restore: docs/admin/backup.md. (PostgreSQL: pg_dump.)"""
    from mailproc.store.backup import NotSqlite, backup_sqlite

    if target.exists() and not force:
        fail(f"{target} exists (--force replaces it)")
    app.ready_engine()  # a database this mailproc knows, not some other file
    try:
        size = backup_sqlite(app.settings.database_url, target)
    except NotSqlite as exc:
        fail(str(exc), EXIT_CONFIG)
    except OSError as exc:
        fail(f"backup to {target} failed: {exc}")
    if as_json:
        echo_json({"database": app.database, "backup": target.absolute(), "bytes": size})
    else:
        click.echo(f"{app.database} copied to {target} ({size} bytes)")


COMMANDS = [backup]
