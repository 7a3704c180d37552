"""Empty a mail source into the Desk: fetch what waits, apply each mail, settle it after commit.

Shared by IMAP and Maildir so the exactly-once rule lives in one place: a mail is moved or
flagged only after the transaction that applied it committed. The mails of one fetched batch
share that transaction (group commit, see `Desk.batch`); a crash before the settle leaves them
where they were; they come again, the Desk knows their keys, and each duplicate is settled like
its original. Nothing is deleted that was not first stored.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import groupby
from typing import Protocol

from mailproc.desk.attempts import Attempts, Group, groups
from mailproc.desk.outcome import Batcher, Disposition, Origin, Outcome, Parsed
from mailproc.inbound.mime import DEFAULT_LIMITS, HeaderLimits
from mailproc.runtime.progress import Progress, ProgressFactory
from mailproc.runtime.wake import Wake
from mailproc.sources.health import Cursor, Ledger
from mailproc.sources.parse_ahead import parsed_ahead

log = logging.getLogger(__name__)

Ref = int | str  # an IMAP UID or a Maildir file name


class SourceUnavailable(Exception):
    """The mailbox cannot be reached or refused an operation: try again later, with backoff."""


class CredentialsMissing(Exception):
    """A secret the configuration names is not there; the message says which, never its value."""


@dataclass(frozen=True, slots=True)
class Fetched:
    ref: Ref
    raw: bytes
    deleted: bool = False  # IMAP: already flagged \\Deleted (a COPY fallback cut short)


class Source(Protocol):
    name: str
    service: str | None
    cursor: Cursor

    def open(self, readonly: bool) -> None: ...

    def close(self, broken: bool = False) -> None: ...

    def listing(self) -> list[Ref]:
        """What waits now, oldest first (updates self.cursor if the mailbox changed)."""

    def batches(self, refs: Sequence[Ref]) -> Iterator[Sequence[Ref]]: ...

    def fetch(self, refs: Sequence[Ref]) -> Iterator[Fetched]: ...

    def settle(self, done: Sequence[tuple[Fetched, Outcome]]) -> None:
        """Move or flag committed mail; advances self.cursor."""

    def describe(self, outcome: Outcome) -> str: ...

    def wait(self, wake: Wake) -> None:
        """Return when new mail may have come, after the source's timeout, or when `wake` is
        set; a pass follows either way, so the timeout doubles as a heartbeat."""


@dataclass
class Tally:
    counts: Counter[Disposition] = field(default_factory=Counter)

    def __str__(self) -> str:
        return ", ".join(f"{self.counts[d]} {d.value}" for d in Disposition)


@dataclass(frozen=True, slots=True)
class ParseAhead:
    """Worker processes that parse a backlog's mails while this thread applies them, as for
    `ingest` of a folder (mailproc.sources.parse_ahead); jobs 0: parse in this thread."""

    jobs: int = 0
    max_bytes: int = 0
    limits: HeaderLimits = DEFAULT_LIMITS


def drain(
    source: Source,
    batcher: Batcher,
    stop: Wake,
    progress: ProgressFactory,
    ledger: Ledger | None,
    ahead: ParseAhead = ParseAhead(),
    attempts: Attempts | None = None,
) -> Tally:
    """Pass over the source until a listing shows nothing new, then record the success.

    Listing again after each pass closes the window in which mail arriving mid-pass would be
    announced in the reply to some other command than IDLE, and so wait for the next timeout.
    Without a ledger it is a dry run: nothing is settled or recorded (the caller has set
    source.cursor), and the actions are reported as what would be done.
    """
    tally = Tally()
    seen: set[Ref] = set()
    left = 0
    if ledger is not None:
        source.cursor = ledger.cursor(source.name)
    while not stop.is_set():
        refs = [ref for ref in source.listing() if ref not in seen]
        if not refs:
            break
        seen.update(refs)
        bar = progress(source.name, len(refs))
        left = _pass(source, refs, batcher, stop, bar, ledger, tally, ahead, attempts)
    if ledger is not None:
        ledger.record(source.name, source.cursor, left, ok=True)
    return tally


def _pass(
    source: Source,
    refs: list[Ref],
    batcher: Batcher,
    stop: Wake,
    bar: Progress,
    ledger: Ledger | None,
    tally: Tally,
    ahead: ParseAhead,
    attempts: Attempts | None = None,
) -> int:
    """One listing's worth; returns how many of its mails are left (on a stop). With
    `attempts`, a mail that killed the process before is applied alone, or quarantined.

    The batches' mails are fetched and parsed ahead as one stream, so the parsing workers never
    wait at a batch's end; each batch is still applied in its own transaction and settled
    after its commit. Mail fetched ahead of a stop is neither applied nor settled: it stays on
    the server for the next pass."""
    origin = Origin(source.name, source.service)
    left = len(refs)
    stream = parsed_ahead(
        _numbered(source, refs),
        lambda item: item[1].raw,
        ahead.max_bytes,
        ahead.jobs,
        ahead.limits,
    )
    try:
        for _, group in groupby(stream, key=lambda pair: pair[0][0]):
            if ledger is not None:
                ledger.record(source.name, source.cursor, left)
            for part in groups(attempts, list(group), partial(_key, source)):
                done = _apply(source, part, batcher, stop, origin, attempts)
                _finish(source, done, ledger is None, tally)
                left -= len(done)
                bar.advance(len(done))
                if stop.is_set():
                    return left
    finally:
        stream.close()  # stops the workers of a pass cut short
        bar.close()
    return 0


Streamed = tuple[tuple[int, Fetched], Parsed]


def _apply(
    source: Source,
    part: Group[Streamed],
    batcher: Batcher,
    stop: Wake,
    origin: Origin,
    attempts: Attempts | None,
) -> list[tuple[Fetched, Outcome]]:
    """One group's mails in one transaction (committed at the block's end, or rolled back)."""
    done: list[tuple[Fetched, Outcome]] = []
    try:
        with batcher(part.keys) as handle:
            for (_, item), parsed in part.items:
                if stop.is_set():
                    break
                crashed = part.crashed.get(mail_key(source, item.ref))
                done.append((item, handle(item.raw, origin, crashed or parsed)))
    except BaseException:
        if attempts is not None:
            attempts.release(part)
        raise
    return done


def _key(source: Source, streamed: Streamed) -> str:
    return mail_key(source, streamed[0][1].ref)


def mail_key(source: Source, ref: Ref) -> str:
    """A mail's name at its source, for mailproc.desk.attempts: an IMAP UID with the folder's
    UIDVALIDITY, or a Maildir file's unique part (its flags and folder change)."""
    if isinstance(ref, int):
        return f"{source.name}:{source.cursor.uidvalidity}:{ref}"
    return f"{source.name}:{str(ref).rsplit('/', 1)[-1].partition(':2,')[0]}"


def _numbered(source: Source, refs: list[Ref]) -> Iterator[tuple[int, Fetched]]:
    """Every fetched mail with the number of its batch."""
    for number, batch in enumerate(source.batches(refs)):
        for item in source.fetch(batch):
            yield number, item


def _finish(
    source: Source, done: list[tuple[Fetched, Outcome]], dry_run: bool, tally: Tally
) -> None:
    """Settle committed mail, then log one line per mail with what was done to it."""
    if not done:
        return
    error: SourceUnavailable | None = None
    if not dry_run:
        try:
            source.settle(done)
        except SourceUnavailable as exc:
            error = exc
    for _item, outcome in done:
        tally.counts[outcome.disposition] += 1
        action = source.describe(outcome)
        if dry_run:
            action = f"would be {action}"
        elif error is not None:
            action = f"left in place, to be settled when the mailbox is back ({error})"
        _log_outcome(source.name, outcome, action)
    if error is not None:
        raise error


def _log_outcome(name: str, outcome: Outcome, action: str) -> None:
    log.info(
        "%s: <%s> from %s: %s; %s",
        name,
        outcome.key,
        outcome.sender or "-",
        outcome.summary,
        action,
        extra={
            "source": name,
            "message_id": outcome.key,
            "sender": outcome.sender,
            "incident": outcome.incident,
            "disposition": outcome.disposition.value,
            "action": action,
        },
    )
