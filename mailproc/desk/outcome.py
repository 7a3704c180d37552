"""What the Desk tells a mail source about one mail, and the shapes of its handlers.

Small on purpose: the sources, the daemon and the CLI settle mail by these values and import
this module, not the Desk's.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:  # the parser is not imported by an `ingest -` that hands its mail over
    from mailproc.inbound.parse import InboundMail, MailError

Parsed: TypeAlias = "InboundMail | MailError | None"  # parsed ahead; None: not yet


class Disposition(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a mail came from, and the service its mailbox or folder is mapped to, if any."""

    source: str = "cli"
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    disposition: Disposition
    key: str
    incident: int | None = None
    summary: str = ""
    quarantined: bool = False  # settle into the quarantine folder (also for a duplicate of one)
    sender: str = ""
    automatic: bool = False  # a robot's mail, kept unanswered: settle where automatic mail goes
    stored: bool = True  # False only when even quarantining failed: keep the mail at the source


def fields(outcome: Outcome) -> dict[str, Any]:
    """An outcome as `ingest --json` shows it and the daemon's socket answers it."""
    return {
        "disposition": outcome.disposition.value,
        "incident": outcome.incident,
        "summary": outcome.summary,
        "quarantined": outcome.quarantined,
        "automatic": outcome.automatic,
        "stored": outcome.stored,
    }


class Handle(Protocol):
    """Apply one mail; `parsed`, when given, is parse_mail's result for exactly these bytes."""

    def __call__(self, raw: bytes, origin: Origin, parsed: Parsed = None) -> Outcome: ...


class Batcher(Protocol):
    """A group of mails, one transaction; `attempted`: the marks its commit deletes
    (mailproc.desk.attempts)."""

    def __call__(self, attempted: Sequence[str] = ()) -> AbstractContextManager[Handle]: ...
