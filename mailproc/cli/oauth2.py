"""`oauth2-token`: a helper for `oauth2_token_command` that prints an access token.

It needs no configuration file: it runs as the token command of an IMAP source or of [smtp]
(docs/admin/oauth2.md has the Microsoft 365 and Google Workspace set-ups).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from mailproc.cli.app import EXIT_CONFIG, EXIT_FAILED, fail


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


COMMANDS = [oauth2_token]
