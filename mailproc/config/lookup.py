"""Which configuration file a process reads, and what `ingest -` reads of it before loading it.

Apart from the settings' validation (pydantic, the holiday tables) because `ingest -` asks one
thing before deciding whether to load them at all: where the daemon's socket is. It reads that
key of the file as it stands; the daemon validated it when it started.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

#: Where a configuration file is looked for when neither --config nor MAILPROC_CONFIG names
#: one: a checkout's own, then the system's.
SEARCHED = (Path("config/mailproc.toml"), Path("/etc/mailproc/mailproc.toml"))


def resolve_path(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """--config, else MAILPROC_CONFIG, else the first of SEARCHED that exists, else None."""
    if path is not None:
        return path
    if environ.get("MAILPROC_CONFIG"):
        return Path(environ["MAILPROC_CONFIG"])
    return next((p for p in SEARCHED if p.is_file()), None)


def handoff_socket(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """`daemon.socket`: where the daemon takes mail from `ingest -`."""
    return _daemon_path(path, environ, "socket")


def command_socket(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """`daemon.command_socket`: where the daemon's command server runs quick commands."""
    return _daemon_path(path, environ, "command_socket")


def _daemon_path(path: Path | None, environ: Mapping[str, str], key: str) -> Path | None:
    """A path of the `[daemon]` table (relative: from the file's folder, as the settings take
    it); None when it names none, or when the file cannot be read (loading the settings then
    reports why)."""
    resolved = resolve_path(path, environ)
    if resolved is None:
        return None
    try:
        daemon = tomllib.loads(resolved.read_text("utf-8")).get("daemon")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    found = daemon.get(key) if isinstance(daemon, dict) else None
    if not isinstance(found, str) or not found:
        return None
    return resolved.parent / Path(found).expanduser()
