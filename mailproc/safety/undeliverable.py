"""Addresses that bounced for good: marked by a permanent bounce, cleared by an administrator.

Notifications to a marked address are written as suppressed rows (so `incidents show` says
why nobody was told) instead of being sent again and again into a dead mailbox, whose bounces
would come back each time. Only the address one of our own mails was sent to can be marked:
the bounce must name that mail (see mailproc.safety.kept_mail), so a forged bounce cannot
silence someone it never wrote to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailproc.store import db


@dataclass(frozen=True, slots=True)
class Mark:
    address: str
    since: datetime
    status: str
    reason: str
    incident: int | None

    def describe(self) -> str:
        where = f" (bounce on INC-{self.incident})" if self.incident else ""
        since = self.since.strftime("%Y-%m-%d %H:%M")
        return f"address undeliverable since {since}: {self.status} {self.reason}{where}"


def mark(
    session: Session,
    address: str,
    status: str,
    reason: str,
    now: datetime,
    incident: int | None,
    message_pk: int | None,
) -> None:
    """Record a permanent failure; a later one for the same address updates the record."""
    session.info.pop(_KNOWN, None)  # marks() reads afresh
    row = session.get(db.Undeliverable, address)
    if row is None:
        try:
            with session.begin_nested():  # another process may mark it at the same moment
                session.add(
                    db.Undeliverable(
                        address=address,
                        since=now,
                        status=status,
                        reason=reason,
                        incident_id=incident,
                        message_pk=message_pk,
                    )
                )
            return
        except IntegrityError:
            row = session.get(db.Undeliverable, address, populate_existing=True)
    if row is not None:
        row.status, row.reason = status, reason


def marks(session: Session, addresses: Iterable[str]) -> dict[str, Mark]:
    """The marked ones among these addresses. Each address is looked up once per transaction
    (a group of mails, see Desk.batch), and none while no address is marked at all — the
    usual case, which then costs one query per group."""
    known: dict[str, Mark | None] | None = session.info.get(_KNOWN)
    if known is None:
        any_marked = db.run(session, _ANY).first() is not None
        known = session.info[_KNOWN] = {} if any_marked else _NONE_MARKED
    if known is _NONE_MARKED:
        return {}
    wanted = set(addresses) - known.keys()
    if wanted:
        found = session.scalars(
            select(db.Undeliverable).where(db.Undeliverable.address.in_(wanted))
        )
        known.update(dict.fromkeys(wanted) | {row.address: _mark(row) for row in found})
    return {a: m for a in addresses if (m := known.get(a)) is not None}


_KNOWN = "undeliverable_marks"
_ANY = select(db.Undeliverable.address).limit(1)
_NONE_MARKED: dict[str, Mark | None] = {}  # the sentinel of a transaction that saw none


def listing(engine: Engine) -> list[Mark]:
    with Session(engine) as session:
        rows = session.scalars(select(db.Undeliverable).order_by(db.Undeliverable.since))
        return [_mark(row) for row in rows]


def clear(engine: Engine, address: str) -> bool:
    """Let mail go to the address again; False when it was not marked."""
    with Session(engine) as session, session.begin():
        result = session.execute(
            delete(db.Undeliverable).where(db.Undeliverable.address == address.strip().lower())
        )
    return bool(getattr(result, "rowcount", 0))


def _mark(row: db.Undeliverable) -> Mark:
    return Mark(row.address, row.since, row.status, row.reason, row.incident_id)
