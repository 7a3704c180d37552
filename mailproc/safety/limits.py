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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, bindparam, func, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from mailproc.config.settings import Settings
from mailproc.store import db
from mailproc.store.prepared import Prepared
from mailproc.vocabulary import NoticeKind

WINDOW = timedelta(hours=1)
ALL = "all"  # the scope of the global breaker; a correspondent's scope is their address
ANSWERS = (NoticeKind.ACKNOWLEDGMENT.value, NoticeKind.TRANSCRIPT.value, NoticeKind.ANSWER.value)
QUEUED = (db.PENDING, db.SENT, db.FAILED)  # rows that went, or were meant to go, out


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


@dataclass
class _Tally:
    """The hour's counts as one transaction sees them: read from the stored rows when first
    needed and then kept up to date with what the transaction itself queues, so a group of
    mails (Desk.batch) costs a few queries, not several per mail. Another daemon's rows
    committed meanwhile are seen by the next group: the limits may be passed by what
    concurrent groups queue, never by more."""

    since: datetime
    total: int | None = None  # answers to everyone
    to: dict[str, int] = field(default_factory=dict)  # answers per correspondent
    opened: dict[str, bool] = field(default_factory=dict)  # scope -> open now
    reported: dict[str, int] = field(default_factory=dict)  # new incidents per reporter


def _tally(session: Session, now: datetime) -> _Tally:
    tally: _Tally | None = session.info.get("breaker_tally")
    if tally is None:
        tally = session.info["breaker_tally"] = _Tally(now - WINDOW)
    return tally


def sender_throttle(
    session: Session, settings: Settings, sender: str, now: datetime
) -> Throttle | None:
    """Whether a new incident from `sender` goes over their hourly limit (counting it)."""
    limit = settings.limits.new_incidents_per_sender_per_hour
    if not sender:
        return None
    tally = _tally(session, now)
    recent = tally.reported.get(sender)
    if recent is None:
        found = _REPORTED(session, reporter=sender, since=tally.since, limit=limit).scalar()
        recent = int(found or 0)
    tally.reported[sender] = recent + 1
    return Throttle(sender, recent + 1, limit) if recent >= limit else None


def screen(
    session: Session, settings: Settings, recipients: Sequence[str], now: datetime
) -> tuple[dict[str, str], list[Trip]]:
    """For answers about to be queued to these recipients: the ones an open breaker holds
    (recipient -> why), and the breakers that opened just now. The others are counted as
    queued."""
    held: dict[str, str] = {}
    trips: list[Trip] = []
    if not recipients:
        return held, trips
    limits, tally = settings.limits, _tally(session, now)
    everyone = list(dict.fromkeys(recipients))
    _load(session, tally, everyone)
    assert tally.total is not None
    total = Trip(ALL, tally.total, limits.replies_per_hour)
    if _breaker(session, tally, total, now, trips):
        return dict.fromkeys(recipients, f"storm breaker open: {total.describe()}"), trips
    limit = limits.replies_per_correspondent_per_hour
    for recipient in everyone:
        state = Trip(recipient, tally.to[recipient], limit)
        if _breaker(session, tally, state, now, trips):
            held[recipient] = f"storm breaker open: {state.describe()}"
    for recipient in recipients:
        if recipient not in held:
            tally.total += 1
            tally.to[recipient] += 1
    return held, trips


def _load(session: Session, tally: _Tally, recipients: Sequence[str]) -> None:
    """Read what the tally does not hold yet: the open breakers and the hour's answers in
    all (once), and to each recipient new to it."""
    if tally.total is None:
        tally.total = answers(session, tally.since)
        tally.opened = dict.fromkeys(db.run(session, _OPEN).scalars(), True)
    for recipient in recipients:
        if recipient not in tally.to:
            found = _ANSWERED(session, recipient=recipient, since=tally.since).scalar()
            tally.to[recipient] = int(found or 0)


def answers(session: Session, since: datetime) -> int:
    """Acknowledgments and transcripts queued since then, to everyone. The index
    holds the status, so the scan covers only the rows counted, and those stop growing at the
    limit: the breaker adds none while open. (No LIMIT: with one, PostgreSQL's planner bets
    on a sequential scan finding the rows early, and loses when a storm's held rows crowd
    the hour.)"""
    return int(db.run(session, _ANSWERS_SINCE, since=since).scalar() or 0)


def _one_of(column: InstrumentedAttribute[str], values: Sequence[str]) -> ColumnElement[bool]:
    """IN with the constants written into the SQL: no per-execution expansion of a list."""
    return column.in_([literal_column(f"'{v}'") for v in values])  # our own constants


# Statements built once: each costs a fraction of building it anew at every call (the two
# counts that run per mail, compiled once: mailproc.store.prepared). The
# reporter's and the recipient's equality keep the planner on their indexes; the reporter's
# count stops at the limit however many a flooding sender opened.
_ANSWER = and_(_one_of(db.Outbox.kind, ANSWERS), _one_of(db.Outbox.status, QUEUED))
_ANSWERS_SINCE = select(func.count()).where(_ANSWER, db.Outbox.created_at > bindparam("since"))
_ANSWERED = Prepared(
    select(func.count()).where(
        db.Outbox.recipient == bindparam("recipient"),
        db.Outbox.created_at > bindparam("since"),
        _ANSWER,
    )
)
_REPORTED = Prepared(
    select(func.count()).select_from(
        select(db.Incident.id)
        .where(
            db.Incident.reporter == bindparam("reporter"),
            db.Incident.created_at > bindparam("since"),
        )
        .limit(bindparam("limit"))
        .subquery()
    )
)
_OPEN = select(db.Breaker.scope).where(db.Breaker.closed_at.is_(None))


def _breaker(
    session: Session, tally: _Tally, state: Trip, now: datetime, trips: list[Trip]
) -> bool:
    """Whether the scope's breaker is open after this count; appends the Trip if it opened
    just now. Opening and closing are conditional writes, so of several daemons that see
    the same storm one opens the breaker (and alerts); a quiet hour writes nothing."""
    is_open = tally.opened.get(state.scope, False)
    if state.count < state.limit:
        if is_open:
            session.execute(
                update(db.Breaker)
                .where(db.Breaker.scope == state.scope, db.Breaker.closed_at.is_(None))
                .values(closed_at=now)
            )
            tally.opened[state.scope] = False
        return False
    if is_open:
        return True
    tally.opened[state.scope] = True
    reopened = session.execute(
        update(db.Breaker)
        .where(db.Breaker.scope == state.scope, db.Breaker.closed_at.is_not(None))
        .values(opened_at=now, closed_at=None, count=state.count, trips=db.Breaker.trips + 1)
    )
    if not getattr(reopened, "rowcount", 0):
        try:
            with session.begin_nested():  # another daemon may open it at the same moment
                session.add(
                    db.Breaker(scope=state.scope, opened_at=now, count=state.count, trips=1)
                )
        except IntegrityError:
            return True  # opened by the other one, who sends the alert
    trips.append(state)
    return True


def breakers(session: Session) -> list[db.Breaker]:
    """Every breaker that has ever opened, open ones first, for `mailproc limits`."""
    return list(
        session.scalars(
            select(db.Breaker).order_by(db.Breaker.closed_at.is_not(None), db.Breaker.scope)
        )
    )
