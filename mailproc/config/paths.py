"""Paths in the configuration are taken from the configuration file's folder, not the process's.

A relative path that meant the working directory gave one empty database per directory a
command was run from (and a template folder that existed for the daemon only). Settings are
validated with the file's folder as pydantic context; every path field is typed `ConfigPath`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AfterValidator, ValidationInfo

BASE = "base"  # the validation context's key: the folder relative paths are taken from


def _anchored(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get(BASE)
    value = value.expanduser()
    return value if value.is_absolute() or base is None else Path(base) / value


ConfigPath = Annotated[Path, AfterValidator(_anchored)]


def anchored_database_url(url: str, base: Path) -> str:
    """A SQLite URL with a relative file made absolute against `base`; any other URL as is."""
    scheme, sep, rest = url.partition(":///")
    if not sep or not scheme.startswith("sqlite") or rest in ("", ":memory:"):
        return url
    path, query, params = rest.partition("?")
    if path.startswith("/") or path.startswith("file:"):
        return url
    return f"{scheme}:///{base / path}{query}{params}"


def with_password(url: str, password: str) -> str:
    """The URL with `password` when it has none (a password in the URL itself wins)."""
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite") or parts.password or "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def database_name(url: str) -> str:
    """The database as a person finds it again, without its password: the file of a SQLite
    URL, else the URL with the password masked."""
    scheme, sep, rest = url.partition(":///")
    if scheme.startswith("sqlite"):
        path = rest.partition("?")[0] if sep else ""
        return f"SQLite file {path}" if path and path != ":memory:" else "SQLite in memory"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    netloc = f"{user.partition(':')[0]}:***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))
