"""`backup`, `metrics` and `oauth2-token`: the commands that keep a running desk going.

`backup FILE` copies a SQLite database consistently while the daemon writes (PostgreSQL:
pg_dump); `metrics` prints the desk's figures for Prometheus' textfile collector (the daemon
serves the same on `daemon.metrics_listen`); `oauth2-token` is a helper for
`oauth2_token_command` that needs no configuration file. See docs/admin/backup.md,
monitoring.md and oauth2.md.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from mailproc.cli.app import EXIT_CONFIG, EXIT_FAILED, App, fail, pass_app
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


@click.command()
@pass_app
def metrics(app: App) -> None:
    """Print the Prometheus metrics (text exposition format) read from the database.

    For node_exporter's textfile collector: `mailproc metrics > DIR/mailproc.prom.$$ && mv
    DIR/mailproc.prom.$$ DIR/mailproc.prom` from cron or a timer.
    """
    from prometheus_client.exposition import generate_latest

    from mailproc.daemon.metrics import registry_for

    settings, engine = app.settings, app.ready_engine()
    registry = registry_for(lambda: (settings, engine))
    click.echo(generate_latest(registry).decode(), nl=False)


@click.command("oauth2-token")
@click.option("--token-url", required=True, help="The OAuth2 token endpoint (https).")
@click.option("--client-id", required=True, help="The application's (client) id.")
@click.option(
    "--client-secret-env",
    default="MAILPROC_OAUTH2_CLIENT_SECRET",
    show_default=True,
    help="The client secret: this systemd credential or environment variable …",
)
@click.option(
    "--client-secret-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="… or this file.",
)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Scope to ask for (repeatable), e.g. https://outlook.office365.com/.default.",
)
@click.option(
    "--refresh-token-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Use the refresh token grant with the token in this file (else client credentials).",
)
@click.option(
    "--cache",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Keep the token in this file (mode 0600) until five minutes before it expires.",
)
def oauth2_token(
    token_url: str,
    client_id: str,
    client_secret_env: str,
    client_secret_file: Path | None,
    scopes: tuple[str, ...],
    refresh_token_file: Path | None,
    cache: Path | None,
) -> None:
    """Print an OAuth2 access token for XOAUTH2 (exit 1 when the endpoint refuses)."""
    from mailproc.config.credentials import SecretRef, SecretUnreadable, read_secret
    from mailproc.runtime.oauth2 import TokenEndpointError, fetch_token

    try:
        ref = SecretRef("client_secret", client_secret_env, client_secret_file)
        secret = read_secret(ref, os.environ)
        refresh = read_secret(SecretRef("refresh_token", None, refresh_token_file), os.environ)
    except SecretUnreadable as exc:
        fail(str(exc), EXIT_CONFIG)
    if secret is None:
        fail(f"no client secret: set {ref.describe()}", EXIT_CONFIG)
    form = {"client_id": client_id, "client_secret": secret}
    if refresh is not None:
        form |= {"grant_type": "refresh_token", "refresh_token": refresh}
    else:
        form["grant_type"] = "client_credentials"
    if scopes:
        form["scope"] = " ".join(scopes)
    try:
        click.echo(fetch_token(token_url, form, cache, time.time()))
    except TokenEndpointError as exc:
        fail(str(exc), EXIT_FAILED)
