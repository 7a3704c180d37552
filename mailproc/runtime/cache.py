"""A private folder for what one process works out and the next can reuse.

A process per mail (an MTA pipe) or per check (a monitoring probe) would otherwise validate the
configuration and compile the templates every time. What goes here is derived data only, each
file named by a hash of everything it was made from, so it is never stale and deleting the
folder loses nothing.

Some of it (pickled settings, Jinja's compiled templates) is code-like: whoever can write the
folder can make mailproc run code. So the folder is used only when it belongs to this user and
no one else may write to it (it is created 0700); anything else means no cache, not an error.

Where: $MAILPROC_CACHE_DIR, else $XDG_CACHE_HOME/mailproc, else ~/.cache/mailproc;
MAILPROC_CACHE_DIR=off turns it off.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

KEEP = 32  # files per kind of cache; the oldest go when a new one is written


def cache_root(environ: Mapping[str, str]) -> Path | None:
    """Where the cache is, or None when it is turned off (nothing is created yet)."""
    chosen = environ.get("MAILPROC_CACHE_DIR")
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    base = environ.get("XDG_CACHE_HOME") or (
        str(Path(environ["HOME"]) / ".cache") if environ.get("HOME") else None
    )
    return Path(base) / "mailproc" if base else None


def cache_folder(root: Path | None, kind: str) -> Path | None:
    """The folder for one kind of cached data, created if need be; None: no cache."""
    if root is None:
        return None
    folder = root / kind
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (root, folder):
            path.mkdir(mode=0o700, exist_ok=True)
            if not _private(path):
                log.debug("cache folder %s is not private to this user: not used", path)
                return None
    except OSError as exc:
        log.debug("no cache folder (%s): %s", folder, exc)
        return None
    return folder


def _private(path: Path) -> bool:
    info = path.lstat()
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def read(folder: Path, name: str) -> bytes | None:
    """The file's bytes, if it is there and is this user's own."""
    try:
        with (folder / name).open("rb") as handle:
            if os.fstat(handle.fileno()).st_uid != os.geteuid():
                return None
            return handle.read()
    except OSError:
        return None


def write(folder: Path, name: str, data: bytes) -> None:
    """Atomically (a reader sees the whole file or none); failures only cost the cache."""
    temporary: str | None = None
    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, folder / name)
        temporary = None
        _trim(folder)
    except OSError as exc:
        log.debug("could not write the cache file %s: %s", folder / name, exc)
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def _trim(folder: Path) -> None:
    files = sorted(
        (entry for entry in os.scandir(folder) if entry.is_file()),
        key=lambda entry: entry.stat().st_mtime_ns,
    )
    for entry in files[:-KEEP]:
        Path(entry.path).unlink(missing_ok=True)
