"""An OAuth2 access token for XOAUTH2 logins (IMAP and SMTP), from a file or a helper command.

Tokens live about an hour, so they are read at every login: a helper program (see
docs/admin/oauth2.md) or a timer keeps them fresh. The helper runs without our secrets in its
environment (`mailproc.config.credentials.without_secrets`): it needs its own client
credentials, not the desk's signing key or passwords.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Mapping
from pathlib import Path


class TokenUnavailable(Exception):
    """No token now (helper failed, file unreadable): a reason to retry, never to go on."""


def access_token(
    command: tuple[str, ...], file: Path | None, environ: Mapping[str, str] | None
) -> str:
    """The token from `file` if given, else from `command`'s standard output."""
    if file is not None:
        try:
            token = file.read_text("utf-8").strip()
        except OSError as exc:
            raise TokenUnavailable(f"oauth2_token_file {file}: {exc.strerror}") from None
    else:
        token = _run(command, environ)
    if not token:
        raise TokenUnavailable("the XOAUTH2 token is empty")
    return token


def _run(argv: tuple[str, ...], environ: Mapping[str, str] | None) -> str:
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            stdin=subprocess.DEVNULL,
            env=None if environ is None else dict(environ),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TokenUnavailable(f"oauth2_token_command {argv[0]}: {exc}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [""])[-1][:200]
        raise TokenUnavailable(
            f"oauth2_token_command {argv[0]} exited with {done.returncode}: {last}"
        )
    return done.stdout.strip()


def xoauth2_string(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial response (base64), as Google and Microsoft define it."""
    raw = f"user={username}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode()).decode()
