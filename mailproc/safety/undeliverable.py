"""Addresses our mail bounces from: a bounce score, as Mailman keeps one, not one strike.

A permanent bounce (5.x.x) adds `bounces.hard` to the address's score, a temporary one
(4.x.x, a delay) `bounces.soft`; at most one bounce counts per `count_once_per_hours`, so a
burst of notices into a mailbox that is full for an hour counts once; the score halves every
`half_life_days`. At `threshold` the address is suspended: its notices are written as
suppressed rows (so `incidents show` says why nobody was told) instead of being sent again and
again into a dead mailbox, whose bounces would come back each time. After `probe_after_days`
the next notice goes out as a probe: if it bounces, the suspension starts again; if not, the
score fades and the address is back. Only the address one of our own mails was sent to can be
scored: the bounce must name that mail (see mailproc.safety.kept_mail), so a forged bounce
cannot silence someone it never wrote to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailproc.config.safety import BouncesConfig
from mailproc.store import db


@dataclass(frozen=True, slots=True)
class Mark:
    address: str
    since: datetime
    status: str
    reason: str
    incident: int | None
    score: float = 0.0  # decayed to the time it was read
    suspended_at: datetime | None = None
    probe_at: datetime | None = None  # when the next notice goes out as a probe

    def describe(self) -> str:
        where = f" (bounce on INC-{self.incident})" if self.incident else ""
        since = (self.suspended_at or self.since).strftime("%Y-%m-%d %H:%M")
        return f"address undeliverable since {since}: {self.status} {self.reason}{where}"


@dataclass(frozen=True, slots=True)
class Bounce:
    """One bounce of our mail to `address`, as mailproc.safety.kept_mail read it."""

    address: str
    status: str
    reason: str
    permanent: bool
    at: datetime
    incident: int | None
    message_pk: int | None


def decayed(score: float, since: datetime | None, now: datetime, config: BouncesConfig) -> float:
    if since is None or now <= since:
        return score
    days = (now - since).total_seconds() / 86400
    return float(score * 0.5 ** (days / config.half_life_days))


def record(session: Session, config: BouncesConfig, bounce: Bounce) -> Mark:
    """Score the bounce; returns the address's state after it."""
    session.info.pop(_KNOWN, None)  # marks() reads afresh
    row = session.get(db.Undeliverable, bounce.address)
    if row is None:
        try:
            with session.begin_nested():  # another process may record it at the same moment
                row = db.Undeliverable(
                    address=bounce.address,
                    since=bounce.at,
                    status=bounce.status,
                    reason=bounce.reason,
                    score=0.0,
                    scored_at=None,
                    suspended_at=None,
                )
                session.add(row)
        except IntegrityError:
            row = session.get(db.Undeliverable, bounce.address, populate_existing=True)
    assert row is not None
    _count(row, config, bounce)
    session.flush()
    return _mark(row, config, bounce.at)


def _count(row: db.Undeliverable, config: BouncesConfig, bounce: Bounce) -> None:
    now = bounce.at
    score = decayed(row.score, row.scored_at, now, config)
    if score < config.threshold / 8:  # the earlier bounces have faded: a new run of them
        row.since, row.suspended_at = now, None
    row.status, row.reason = bounce.status, bounce.reason
    row.incident_id, row.message_pk = bounce.incident, bounce.message_pk
    window = timedelta(hours=config.count_once_per_hours)
    if row.scored_at is not None and now - row.scored_at < window and row.score > 0:
        return  # counted already in this window (a burst of notices into one dead mailbox)
    probing = row.suspended_at is not None  # a probe (or a late bounce) of a suspended one
    row.score = score + (config.hard if bounce.permanent else config.soft)
    row.scored_at = now
    if row.score >= config.threshold or probing:
        row.suspended_at = now


def marks(
    session: Session, addresses: Iterable[str], now: datetime, config: BouncesConfig
) -> dict[str, Mark]:
    """The suspended ones among these addresses, whose probe is not due. Each address is
    looked up once per transaction (a group of mails, see Desk.batch), and none while no
    address is suspended at all — the usual case, which then costs one query per group."""
    known: dict[str, Mark | None] | None = session.info.get(_KNOWN)
    if known is None:
        any_suspended = db.run(session, _ANY).first() is not None
        known = session.info[_KNOWN] = {} if any_suspended else _NONE_SUSPENDED
    if known is _NONE_SUSPENDED:
        return {}
    wanted = set(addresses) - known.keys()
    if wanted:
        found = session.scalars(
            select(db.Undeliverable).where(db.Undeliverable.address.in_(wanted))
        )
        known.update(
            dict.fromkeys(wanted) | {row.address: _mark(row, config, now) for row in found}
        )
    return {a: m for a in addresses if (m := known.get(a)) is not None and _holds(m, now)}


def _holds(mark: Mark, now: datetime) -> bool:
    return mark.suspended_at is not None and mark.probe_at is not None and now < mark.probe_at


_KNOWN = "undeliverable_marks"
_ANY = select(db.Undeliverable.address).where(db.Undeliverable.suspended_at.is_not(None)).limit(1)
_NONE_SUSPENDED: dict[str, Mark | None] = {}  # the sentinel of a transaction that saw none


def listing(engine: Engine, now: datetime, config: BouncesConfig) -> list[Mark]:
    """Every address with a bounce score, suspended or not, oldest first."""
    with Session(engine) as session:
        rows = session.scalars(select(db.Undeliverable).order_by(db.Undeliverable.since))
        return [_mark(row, config, now) for row in rows]


def clear(engine: Engine, address: str) -> bool:
    """Forget the address's bounces; False when it had none."""
    with Session(engine) as session, session.begin():
        result = session.execute(
            delete(db.Undeliverable).where(db.Undeliverable.address == address.strip().lower())
        )
    return bool(getattr(result, "rowcount", 0))


def _mark(row: db.Undeliverable, config: BouncesConfig, now: datetime) -> Mark:
    probe = None
    if row.suspended_at is not None:
        probe = row.suspended_at + timedelta(days=config.probe_after_days)
    score = decayed(row.score, row.scored_at, now, config)
    return Mark(
        row.address,
        row.since,
        row.status,
        row.reason,
        row.incident_id,
        score,
        row.suspended_at,
        probe,
    )
