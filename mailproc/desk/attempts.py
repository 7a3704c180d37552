"""Poison mail: a mail that kills the process handling it is tried alone, then quarantined.

Most failures are exceptions, and the Desk quarantines the mail that raised. But some end the
process: the kernel's OOM killer, a crash in C code, a signal. Then the group of mails in hand
rolls back and, without this, is fetched again and kills the process again, and intake stops for
everybody. So before a group is applied its mails are counted in `attempts`, in a commit of its
own, and the group's commit deletes those rows: a row that stays means the process died with
the mail in hand. Such a mail is applied alone next time, so one poison mail costs no other
mail a second try; after `limits.crashes_before_quarantine` such deaths it is quarantined
unparsed, with the reason "crashed the processor N times".

Keys name a mail at its source (an IMAP UID with its UIDVALIDITY, a Maildir file name) or,
for `ingest`, by the hash of its bytes. A failure the process survives (a database outage) is
not a crash: its marks are taken back. Each mark names its process (host, pid, start time), so
the marks of another daemon working the same mailbox right now are not taken for deaths: on
this host its pid tells, for another host a mark counts as a death only after LEASE.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from sqlalchemy import Engine, Insert, delete, select, update
from sqlalchemy.orm import Session

from mailproc.inbound.mime import MailError
from mailproc.store import db

T = TypeVar("T")
PRUNE_AFTER = timedelta(days=14)  # longer than an MTA retries a mail (5 days by default)


class Crashed(MailError):
    """What the Desk is given instead of a parse for a mail that killed the process before:
    quarantine it unparsed, with this reason."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A group's mails: the ones to apply together, and the suspects (key -> earlier deaths),
    each to be applied alone (or quarantined, over the limit)."""

    together: tuple[str, ...]
    suspects: dict[str, int]


class Attempts:
    def __init__(self, engine: Engine, clock: Callable[[], datetime], crashes: int) -> None:
        self.engine, self.clock, self.crashes = engine, clock, crashes
        self.owner = process_name()

    def plan(self, keys: Sequence[str]) -> Plan:
        """Read the earlier deaths of these mails; mark the clean ones as in hand (committed).
        A mark of a process that is still alive (another daemon on the same mailbox, with the
        mail in hand right now) is no death: such a mail goes with the clean ones, unmarked."""
        with Session(self.engine) as session, session.begin():
            rows = session.execute(
                select(db.Attempt.key, db.Attempt.tries, db.Attempt.owner, db.Attempt.at).where(
                    db.Attempt.key.in_(keys)
                )
            ).all()
            now = self.clock()
            suspects = {r.key: r.tries for r in rows if not alive(r.owner, r.at, now, self.owner)}
            taken = {r.key for r in rows}
            together = tuple(k for k in dict.fromkeys(keys) if k not in suspects)
            self._mark(session, [k for k in together if k not in taken], {})
        return Plan(together, suspects)

    def mark_suspect(self, key: str, tries: int) -> None:
        """A suspect about to be applied alone: one more try, committed first."""
        with Session(self.engine) as session, session.begin():
            self._mark(session, (key,), {key: tries})

    def verdict(self, key: str, plan: Plan) -> Crashed | None:
        tries = plan.suspects.get(key, 0)
        if tries >= self.crashes:
            return Crashed(f"crashed the processor {tries} times")
        return None

    def _mark(self, session: Session, keys: Sequence[str], known: dict[str, int]) -> None:
        now = self.clock()
        fresh = [
            {"key": k, "tries": 1, "at": now, "owner": self.owner} for k in keys if k not in known
        ]
        if fresh:  # a twin daemon may mark the same mail meanwhile: its mark stands
            session.execute(_insert_new(session.get_bind().dialect.name), fresh)
        for key, tries in known.items():
            session.execute(
                update(db.Attempt)
                .where(db.Attempt.key == key)
                .values(tries=tries + 1, at=now, owner=self.owner)
            )

    def prune(self) -> int:
        """Forget the marks of mails not tried again within PRUNE_AFTER: a mail still at its
        source is tried again on every pass (its mark's time renewed), so such a mark is of a
        mail that left (deleted by someone, or an `ingest` the MTA gave up on). Returns how
        many went."""
        with Session(self.engine) as session, session.begin():
            cutoff = self.clock() - PRUNE_AFTER
            gone = session.execute(delete(db.Attempt).where(db.Attempt.at < cutoff))
            return int(getattr(gone, "rowcount", 0) or 0)

    def release(self, group: Group[T]) -> None:
        """The process survived the group's failure (a database outage): its tries were no
        crash. A suspect keeps its count. Best effort: with the database down the marks stay,
        and count as one death each."""
        if group.alone:
            return
        with suppress(Exception), Session(self.engine) as session, session.begin():
            forget(session, group.keys)


@dataclass(frozen=True, slots=True)
class Group(Generic[T]):
    """Mails to apply in one transaction, whose marks that transaction deletes."""

    items: list[T]
    keys: tuple[str, ...] = ()
    crashed: dict[str, Crashed] = field(default_factory=dict)  # key -> quarantine unparsed
    alone: bool = False


def groups(
    attempts: Attempts | None, items: list[T], key_of: Callable[[T], str]
) -> Iterator[Group[T]]:
    """The mails without a death to their name together, then each suspect alone (its try
    marked first) or, over the limit, to quarantine. Without `attempts` (a dry run) one group,
    unguarded."""
    if attempts is None:
        yield Group(items)
        return
    keys = [key_of(item) for item in items]
    plan = attempts.plan(keys)
    together = [(item, key) for item, key in zip(items, keys, strict=True) if key in plan.together]
    if together:
        yield Group([item for item, _ in together], tuple(key for _, key in together))
    for item, key in zip(items, keys, strict=True):
        if key not in plan.suspects:
            continue
        verdict = attempts.verdict(key, plan)
        if verdict is None:
            attempts.mark_suspect(key, plan.suspects[key])
        yield Group([item], (key,), {key: verdict} if verdict else {}, alone=True)


def forget(session: Session, keys: Sequence[str]) -> None:
    """In the transaction that applied the mails: they are done, whatever their outcome."""
    if keys:
        session.execute(delete(db.Attempt).where(db.Attempt.key.in_(keys)))


def _insert_new(dialect: str) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING in the database's dialect (imported only for it)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(db.Attempt).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(db.Attempt).on_conflict_do_nothing()


LEASE = timedelta(minutes=15)  # a mark of another host older than this is a death


def process_name() -> str:
    """host:pid:start: names this process, and no later one that reuses its pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{_started(os.getpid())}"


def alive(owner: str, at: datetime, now: datetime, me: str) -> bool:
    """Whether the process that marked a mail may still have it in hand. On this host its pid
    and start time tell; another host's mark counts as alive for LEASE (a group of mails takes
    seconds)."""
    host, _, rest = owner.partition(":")
    pid, _, start = rest.partition(":")
    if owner == me:
        return False  # ours, from before a failure this process survived: counts as a try
    if host != socket.gethostname() or not pid.isdigit():
        return now - at < LEASE
    return _started(int(pid)) == start


def _started(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' when there is no such process)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return ""
    return fields[19].decode() if len(fields) > 19 else ""
