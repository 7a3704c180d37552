"""Which files of a mail ride along with each notice about it, and which are only listed.

Pure. The people who work an incident need the reporter's screenshot or log in their mail
client, not a note that one exists; but a notice must stay a size every mail server takes, a
program file is not something to forward, nobody wants their own files echoed back, and the
files of an internal note are as internal as its text. So, per notice: the files in the order
they came, attached while the total stays within `notifications.attachments_max_bytes`; the
others listed (name, type, size, why) with how to fetch them. Nothing is dropped silently.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mailproc.config.settings import NotificationsConfig
from mailproc.notify.letter import Enclosure
from mailproc.vocabulary import NoticeKind

_ANSWERS = (NoticeKind.ACKNOWLEDGMENT, NoticeKind.TRANSCRIPT)


@dataclass(frozen=True, slots=True)
class MailFile:
    """A file of the mail behind a round of notices; `number` counts within its incident,
    as `mailproc attachments get INC-n N` does."""

    number: int
    enclosure: Enclosure


@dataclass(frozen=True, slots=True)
class Files:
    """The files of one mail, who sent them, and whether the mail was an internal note."""

    items: tuple[MailFile, ...] = ()
    sender: str = ""
    internal: bool = False


NO_FILES = Files()


@dataclass(frozen=True, slots=True)
class Chosen:
    attached: tuple[Enclosure, ...]
    listed: tuple[dict[str, Any], ...]  # every file the recipient may know of, for templates


def choose(
    files: Files, kind: NoticeKind, recipient: str, staff: bool, config: NotificationsConfig
) -> Chosen:
    attached: list[Enclosure] = []
    listed: list[dict[str, Any]] = []
    budget = config.attachments_max_bytes
    for item in files.items:
        if files.internal and not staff:
            continue  # not even named: the note's files are as internal as its text
        own = kind in _ANSWERS or recipient == files.sender
        why = "your own file, not sent back" if own else _withheld(item.enclosure, config)
        if not why and item.enclosure.size > budget:
            limit = size_text(config.attachments_max_bytes)
            why = f"too large to attach (at most {limit} of files per mail)"
        if not why:
            attached.append(item.enclosure)
            budget -= item.enclosure.size
        listed.append(_entry(item, why, own))
    return Chosen(tuple(attached), tuple(listed))


def _withheld(enclosure: Enclosure, config: NotificationsConfig) -> str:
    if excluded(enclosure, config.attachments_exclude):
        return "not sent by mail (a program file)"
    return ""


def excluded(enclosure: Enclosure, patterns: Sequence[str]) -> bool:
    """Whether a content type or a file-name pattern of `notifications.attachments_exclude`
    matches (the type is the sender's word, hence the names too)."""
    kind, name = enclosure.content_type.lower(), enclosure.filename.lower()
    return any(
        fnmatch.fnmatchcase(name, p.lower()) if "/" not in p else kind == p.lower()
        for p in patterns
    )


def _entry(item: MailFile, why: str, own: bool) -> dict[str, Any]:
    enclosure = item.enclosure
    return {
        "number": item.number,
        "filename": enclosure.filename or f"attachment-{item.number}",
        "content_type": enclosure.content_type,
        "size": enclosure.size,
        "size_text": size_text(enclosure.size),
        "attached": not why,
        "reason": why,
        "own": own,  # the recipient sent it: neither attached nor to be fetched
    }


def size_text(size: int) -> str:
    """812 B, 12.3 KiB, 4.1 MiB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
