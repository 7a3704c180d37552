"""Limits on what mailproc answers: the storm circuit breaker and the per-sender rate limit.

A help desk that answers an auto-reply, which answers back, can send thousands of mails an
hour; so can one that acknowledges a flood. Both limits count rows already stored — answers
in the outbox, incidents by reporter — through indexes, so they hold across restarts and
for several daemons on one database; and each count reads no more than about its limit's
worth of rows (answers stop being added at the limit; a sender's count stops there), so a
storm does not make the counting slower. Nothing is dropped: over a limit, mail is still
stored and applied; only the automatic answers (acknowledgments, transcripts) stop.

The breaker of a scope (every answer together, or one correspondent) opens when the last
hour's answers reach its limit and closes when a later count is below it. Opening is a row in
`breakers`, claimed in the transaction that opens it, so the administrators get one alert per
opening however many daemons see the storm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailproc import db
from mailproc.config import Settings
from mailproc.vocabulary import NoticeKind

WINDOW = timedelta(hours=1)
ALL = "all"  # the scope of the global breaker; a correspondent's scope is their address
ANSWERS = (NoticeKind.ACKNOWLEDGMENT.value, NoticeKind.TRANSCRIPT.value)
QUEUED = ("pending", "sent", "failed")  # rows that went, or were meant to go, out


@dataclass(frozen=True, slots=True)
class Trip:
    """A breaker that has just opened: the administrators hear of it once."""

    scope: str
    count: int
    limit: int

    def describe(self) -> str:
        if self.scope == ALL:
            return (
                f"{self.count} acknowledgments and transcripts in the last hour "
                f"(limit {self.limit} an hour, limits.replies_per_hour)"
            )
        return (
            f"{self.count} acknowledgments and transcripts to {self.scope} in the last hour "
            f"(limit {self.limit} an hour, limits.replies_per_correspondent_per_hour)"
        )


@dataclass(frozen=True, slots=True)
class Throttle:
    """A sender over the new-incident limit: their incident is stored, not acknowledged."""

    sender: str
    count: int  # new incidents from the sender in the last hour, this one included
    limit: int

    @property
    def detail(self) -> dict[str, object]:
        return {"sender": self.sender, "count": self.count, "limit": self.limit}

    @property
    def reason(self) -> str:
        return (
            f"rate limit: more than {self.limit} new incidents from {self.sender} within an "
            "hour (limits.new_incidents_per_sender_per_hour); not acknowledged"
        )


def sender_throttle(
    session: Session, settings: Settings, sender: str, now: datetime
) -> Throttle | None:
    """Whether a new incident from `sender` goes over their hourly limit."""
    limit = settings.limits.new_incidents_per_sender_per_hour
    if not sender:
        return None
    recent = _count(
        session,
        select(db.Incident.id).where(
            db.Incident.reporter == sender, db.Incident.created_at > now - WINDOW
        ),
        limit,
    )
    return Throttle(sender, recent + 1, limit) if recent >= limit else None


def screen(
    session: Session, settings: Settings, recipients: Sequence[str], now: datetime
) -> tuple[dict[str, str], list[Trip]]:
    """For answers about to be queued to these recipients: the ones an open breaker holds
    (recipient -> why), and the breakers that opened just now."""
    held: dict[str, str] = {}
    trips: list[Trip] = []
    if not recipients:
        return held, trips
    limits, since = settings.limits, now - WINDOW
    rows = {
        row.scope: row
        for row in session.scalars(
            select(db.Breaker).where(db.Breaker.scope.in_([ALL, *recipients])).with_for_update()
        )
    }
    everyone = list(dict.fromkeys(recipients))
    counts = answers(session, since, everyone)
    total = Trip(ALL, counts[ALL], limits.replies_per_hour)
    if _breaker(session, rows.get(ALL), total, now, trips):
        return dict.fromkeys(recipients, f"storm breaker open: {total.describe()}"), trips
    limit = limits.replies_per_correspondent_per_hour
    for recipient in everyone:
        state = Trip(recipient, counts[recipient], limit)
        if _breaker(session, rows.get(recipient), state, now, trips):
            held[recipient] = f"storm breaker open: {state.describe()}"
    return held, trips


def answers(session: Session, since: datetime, recipients: Sequence[str] = ()) -> dict[str, int]:
    """Acknowledgments and transcripts queued since then: in all (under ALL) and to each of
    the recipients, in one scan of the hour's answers. The index holds the status, so the scan
    covers only the rows counted, and those stop growing at the limit: the breaker adds none
    while open. (No LIMIT: with one, PostgreSQL's planner bets on a sequential scan finding
    the rows early, and loses when a storm's held rows crowd the hour.)"""
    each = [func.sum(case((db.Outbox.recipient == r, 1), else_=0)) for r in recipients]
    row = session.execute(
        select(func.count(), *each).where(
            db.Outbox.kind.in_(ANSWERS),
            db.Outbox.status.in_(QUEUED),
            db.Outbox.created_at > since,
        )
    ).one()
    return {ALL: int(row[0]), **{r: int(n or 0) for r, n in zip(recipients, row[1:], strict=True)}}


def _count(session: Session, query: Select[Any], limit: int) -> int:
    """COUNT(*) of at most `limit` rows: the index scan stops there, however many a flooding
    sender opened (the reporter's equality keeps the planner on the index)."""
    bounded = query.limit(limit).subquery()
    return int(session.scalar(select(func.count()).select_from(bounded)) or 0)


def _breaker(
    session: Session, row: db.Breaker | None, state: Trip, now: datetime, trips: list[Trip]
) -> bool:
    """Whether the scope's breaker is open after this count; appends the Trip if it opened
    just now. The row lock (PostgreSQL) or the write lock (SQLite) makes one opener."""
    if state.count < state.limit:
        if row is not None and row.closed_at is None:
            row.closed_at = now
        return False
    if row is not None and row.closed_at is None:
        return True
    if row is None:
        try:
            with session.begin_nested():  # another daemon may open it at the same moment
                session.add(
                    db.Breaker(scope=state.scope, opened_at=now, count=state.count, trips=1)
                )
        except IntegrityError:
            return True  # opened by the other one, who sends the alert
    else:
        row.opened_at, row.closed_at, row.count = now, None, state.count
        row.trips += 1
    trips.append(state)
    return True


def breakers(session: Session) -> list[db.Breaker]:
    """Every breaker that has ever opened, open ones first, for `mailproc limits`."""
    return list(
        session.scalars(
            select(db.Breaker).order_by(db.Breaker.closed_at.is_not(None), db.Breaker.scope)
        )
    )
