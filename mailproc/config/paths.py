"""Which configuration file a process reads, and what `ingest -` must know before loading it.

Apart from the settings' validation (pydantic, the holiday tables): `ingest -` asks only where
the daemon's socket is, and reads that one key of the file as it stands.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

DEFAULT_PATH = Path("config/mailproc.toml")


def resolve_path(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """--config, else MAILPROC_CONFIG, else config/mailproc.toml if present, else None."""
    if path is not None:
        return path
    if environ.get("MAILPROC_CONFIG"):
        return Path(environ["MAILPROC_CONFIG"])
    return DEFAULT_PATH if DEFAULT_PATH.is_file() else None


def handoff_socket(path: Path | None, environ: Mapping[str, str]) -> Path | None:
    """`daemon.socket` of the configuration, unvalidated; None when it names none, or when the
    file cannot be read (then loading the settings reports why)."""
    resolved = resolve_path(path, environ)
    if resolved is None:
        return None
    try:
        daemon = tomllib.loads(resolved.read_text("utf-8")).get("daemon")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    found = daemon.get("socket") if isinstance(daemon, dict) else None
    return Path(found) if isinstance(found, str) and found else None
