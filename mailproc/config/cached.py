"""The validated settings of a configuration, kept across processes.

Validating a configuration (pydantic builds validators for some twenty models, looks for its
plugins among the installed packages, runs them, and the holiday tables named are loaded)
costs more than storing a mail does; an MTA that starts `mailproc ingest -` once per mail, or a
monitoring probe, paid it every time. So the Settings a configuration gave are pickled into the
cache folder (mailproc.runtime.cache) under the hash of everything they were made from: the
file's bytes and name, the environment variable that overrides it, and the code that defines
the settings (the size and time of its modules, pydantic's and Python's versions). Editing any
of these makes a new name, so a cached result is never stale; a configuration with errors is
never cached, so its errors are reported every time.

The secret is never written: the caller takes it from the environment after loading, as it does
after validating.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import pickle
import sys
from collections.abc import Callable, Mapping
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import TypeVar

from mailproc import calendars, durations, vocabulary
from mailproc.runtime import cache

log = logging.getLogger(__name__)
T = TypeVar("T")

_OVERRIDES = ("MAILPROC_DATABASE_URL",)  # environment the validated result depends on


def load(
    text: bytes,
    origin: str,
    environ: Mapping[str, str],
    validate: Callable[[], T],
    kind: type[T],
) -> T:
    """What `validate()` gives for this configuration (a `kind`), from the cache when it has it."""
    folder = cache.cache_folder(cache.cache_root(environ), "settings")
    if folder is None:
        return validate()
    name = _key(text, origin, environ)
    found = _unpickled(cache.read(folder, name), kind)
    if found is not None:
        return found
    settings = validate()
    cache.write(folder, name, pickle.dumps(settings, pickle.HIGHEST_PROTOCOL))
    return settings


def _unpickled(data: bytes | None, kind: type[T]) -> T | None:
    if data is None:
        return None
    try:
        found = pickle.loads(data)  # noqa: S301 (our own file, in a folder only we can write)
    except Exception as exc:  # a truncated or foreign file: validate instead
        log.debug("settings cache unreadable (%s): validating", exc)
        return None
    return found if isinstance(found, kind) else None


def _key(text: bytes, origin: str, environ: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    # the working folder too: relative paths (the file's own, a variable's) are resolved by it
    parts = (origin, os.getcwd(), *(f"{name}={environ.get(name, '')}" for name in _OVERRIDES))
    for part in parts:
        digest.update(part.encode() + b"\0")
    digest.update(text)
    digest.update(_code_stamp())
    return f"{digest.hexdigest()}.pickle"


def _code_stamp() -> bytes:
    """Changes with the code that defines and fills the settings, so a pickle of an older
    version is never read back into classes that have changed."""
    import pydantic.version

    files = [*Path(__file__).parent.glob("*.py"), *(Path(str(m.__file__)) for m in _MODULES)]
    files.append(Path(__file__).parents[1] / "workflow" / "workflows.toml")  # built-ins
    parts = [sys.version, pydantic.version.VERSION]
    for path in sorted(files):
        info = os.stat(path)
        parts.append(f"{path.name}:{info.st_mtime_ns}:{info.st_size}")
    return "\n".join(parts).encode()


_MODULES = (calendars, durations, vocabulary)


class HolidayFiles:
    """A calendars.YearStore in the cache folder: a year of one country's holidays per file, as
    ISO dates (data, not code), named with the `holidays` package's version, so an upgrade
    works the years out again instead of reading what the old tables said."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    @cached_property
    def _version(self) -> str:  # asked only when a calendar looks a year up
        return _holidays_version()

    def get(self, key: str) -> frozenset[date] | None:
        data = cache.read(self._folder, self._name(key))
        if data is None:
            return None
        try:
            return frozenset(date.fromisoformat(line) for line in data.decode().split())
        except ValueError:  # a truncated or foreign file: work the year out again
            return None

    def put(self, key: str, dates: frozenset[date]) -> None:
        text = "\n".join(sorted(day.isoformat() for day in dates))
        cache.write(self._folder, self._name(key), text.encode())

    def _name(self, key: str) -> str:
        return f"{key}-{self._version}.txt"


def _holidays_version() -> str:
    """The installed `holidays` distribution's version, read from its metadata folder's name:
    importing the package to ask it is what the store is there to avoid."""
    spec = importlib.util.find_spec("holidays")
    if spec is None or not spec.submodule_search_locations:
        return "none"
    package = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(package.parent.glob("holidays-*.dist-info"))
    if found:
        return found[-1].name.removeprefix("holidays-").removesuffix(".dist-info")
    info = os.stat(package / "__init__.py")  # not installed by pip: the code's own stamp
    return f"{info.st_mtime_ns}-{info.st_size}"
