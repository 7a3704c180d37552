"""Read messages from .eml files, folders of them, Maildir folders, mbox files or stdin.

One message at a time, in a stable order (names sorted), so a large export never sits in
memory and a second run over the same paths meets the same mails in the same order. A file is
one message — a body line starting with "From " is text, not the start of another mail —
unless the caller asks for mbox (`ingest --mbox`); then it is split at its "From " lines and
each message's ">From " lines lose one ">" (the mboxrd quoting).
"""

from __future__ import annotations

import mailbox
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileMail:
    label: str  # where it came from, for messages to the person running the command
    raw: bytes


class SourceError(Exception):
    pass


def read_paths(paths: Iterable[str], mbox: bool = False) -> Iterator[FileMail]:
    for name in paths:
        if name == "-":
            yield FileMail("<stdin>", sys.stdin.buffer.read())
            continue
        path = Path(name)
        if not path.exists():
            raise SourceError(f"{name}: no such file or directory")
        yield from _read(path, mbox)


def is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def _read(path: Path, mbox: bool) -> Iterator[FileMail]:
    if is_maildir(path):
        yield from read_maildir(path)
    elif path.is_dir():
        for child in sorted(
            p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
        ):
            yield from _read_file(child, mbox)
    else:
        yield from _read_file(path, mbox)


def _read_file(path: Path, mbox: bool) -> Iterator[FileMail]:
    if mbox:
        yield from read_mbox(path)
    else:  # a saved mail may start with its envelope's "From " line: not a header
        yield FileMail(str(path), _strip_from_line(path.read_bytes()))


def read_maildir(path: Path) -> Iterator[FileMail]:
    for sub in ("new", "cur"):
        for entry in sorted((path / sub).iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                yield FileMail(str(entry), entry.read_bytes())


def read_mbox(path: Path) -> Iterator[FileMail]:
    box = mailbox.mbox(path, create=False)
    try:
        for index, key in enumerate(box.iterkeys()):
            raw = _strip_from_line(box.get_bytes(key, True))
            yield FileMail(f"{path}#{index + 1}", _FROM_QUOTED.sub(rb"\1", raw))
    finally:
        box.close()


_FROM_QUOTED = re.compile(rb"^>(>*From )", re.MULTILINE)


def _strip_from_line(raw: bytes) -> bytes:
    if raw.startswith(b"From "):
        return raw.split(b"\n", 1)[1] if b"\n" in raw else b""
    return raw
