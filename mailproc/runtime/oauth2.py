"""An OAuth2 access token for XOAUTH2 logins (IMAP and SMTP), from a file or a helper command.

Tokens live about an hour, so they are read at every login: a helper program (see
docs/admin/oauth2.md) or a timer keeps them fresh. The helper runs without our secrets in its
environment (`mailproc.config.credentials.without_secrets`): it needs its own client
credentials, not the desk's signing key or passwords. `mailproc oauth2-token` is such a helper
(`fetch_token`): the client credentials grant (Microsoft 365, app-only) or the refresh token
grant (Google Workspace, a user's consent), with a cache so that each login does not ask again.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
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


class TokenEndpointError(Exception):
    """The token endpoint refused or could not be reached; the message has its words."""


def fetch_token(
    token_url: str,
    form: dict[str, str],
    cache: Path | None,
    now: float,
    timeout: float = 30,
) -> str:
    """An access token from an OAuth2 token endpoint (client credentials or refresh token
    grant), reused from `cache` until five minutes before it expires."""
    cached = _cached(cache, now)
    if cached is not None:
        return cached
    if not _safe_url(token_url):
        raise TokenEndpointError(f"{token_url}: the token endpoint must be https://")
    body = urllib.parse.urlencode(form).encode()
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        token_url, data=body, headers={"Accept": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise TokenEndpointError(f"{token_url}: {exc.code} {_reason(exc)}") from None
    except (OSError, ValueError) as exc:
        raise TokenEndpointError(f"{token_url}: {exc}") from None
    token = answer.get("access_token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenEndpointError(f"{token_url}: the answer has no access_token")
    if cache is not None:
        lifetime = float(answer.get("expires_in", 3600))
        _store(cache, {"access_token": token, "expires_at": now + lifetime})
    return token


def _safe_url(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    loopback = parsed.hostname in ("127.0.0.1", "::1", "localhost")
    return parsed.scheme == "https" or (parsed.scheme == "http" and loopback)


def _reason(exc: urllib.error.HTTPError) -> str:
    """The endpoint's error and description (Microsoft's and Google's JSON), else the status."""
    try:
        data = json.loads(exc.read())
        return f"{data.get('error', '')}: {data.get('error_description', '')}".strip(": ")[:300]
    except (OSError, ValueError, AttributeError):
        return str(exc.reason)


def _cached(cache: Path | None, now: float) -> str | None:
    if cache is None:
        return None
    try:
        data = json.loads(cache.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    token, expires = data.get("access_token"), data.get("expires_at", 0)
    return token if isinstance(token, str) and now < float(expires) - 300 else None


def _store(cache: Path, data: dict[str, object]) -> None:
    partial = cache.with_name(f".{cache.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    partial.replace(cache)
