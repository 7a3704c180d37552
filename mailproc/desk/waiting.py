"""A reply that arrives before the mail it answers waits for it, instead of opening an incident.

An MTA delivers in parallel, and mail that took two relays overtakes mail that took one: a
reply can reach the mailbox before the report it answers. Applied at once, it would open an
incident of its own, and the report another. So a mail that names parents (In-Reply-To,
References) of which none is known — no incident's mail, none of ours, no [INC-n] tag —
is stored with the outcome `waiting` and one `awaited` row per parent, for at most
`threading.wait_for_parent_seconds`. It is settled at its source like any stored mail: the
database holds it, nothing is lost. When a parent arrives, the Desk applies the waiting
replies right after it, in the same transaction; when the wait runs out, `Desk.release_due`
applies them as they are (they open their own incident). A parent that turns up even later
still joins the thread: the Desk records the ids a mail names (mailproc.desk.mail), and a mail
whose own Message-ID an incident's mail named joins that incident.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, exists, select, update
from sqlalchemy.orm import Session, aliased

from mailproc.config.settings import Settings
from mailproc.inbound.parse import InboundMail
from mailproc.inbound.subject import ParsedSubject
from mailproc.signing import read_message_id
from mailproc.store import db

WAITING = "waiting"  # the messages.outcome of a reply waiting for its parent
MAX_PARENTS = 10  # the newest ids of References are the nearest ancestors


@dataclass(frozen=True, slots=True)
class Held:
    """A waiting mail's row, to apply it without claiming its key again."""

    pk: int
    key: str
    source: str
    raw: bytes


def parents(mail: InboundMail) -> list[str]:
    """The ids the mail answers, nearest first, at most MAX_PARENTS."""
    ids = [*reversed(mail.in_reply_to), *reversed(mail.references)]
    return [i for i in dict.fromkeys(ids) if i and i != mail.message_id][:MAX_PARENTS]


def should_wait(mail: InboundMail, subject: ParsedSubject, settings: Settings) -> bool:
    """For a mail that threads onto nothing: whether it names a parent that may still come."""
    if settings.threading.wait_for_parent_seconds <= 0 or subject.incident is not None:
        return False
    named = parents(mail)
    keys = settings.verification_keys
    return bool(named) and not any(read_message_id(keys, ref) for ref in named)


def hold(session: Session, settings: Settings, mail: InboundMail, pk: int, now: datetime) -> str:
    """Keep the claimed mail waiting; returns the summary for its outcome."""
    seconds = settings.threading.wait_for_parent_seconds
    until = now + timedelta(seconds=seconds)
    named = parents(mail)
    session.execute(
        update(db.Message).where(db.Message.id == pk).values(outcome=WAITING, incident_id=None)
    )
    for parent in named:
        session.add(db.Awaited(message_pk=pk, parent=parent, until=until))
    session.flush()
    return f"waiting up to {seconds:g}s for the mail it answers, <{named[0]}>"


_CHILDREN = (
    select(db.Message.id, db.Message.key, db.Message.source, db.Message.raw)
    .join(db.Awaited, db.Awaited.message_pk == db.Message.id)
    .where(db.Awaited.parent == bindparam("parent"), db.Message.outcome == WAITING)
    .order_by(db.Message.id)
)
_WAITING = aliased(db.Message, name="waiting")  # not correlated with a statement on messages
# Whether a mail waits for the one whose Message-ID is `parent`: for a RETURNING clause, so
# that the statement settling a mail tells whether `children` has anything to read.
AWAITED = exists(
    select(db.Awaited.message_pk)
    .join(_WAITING, _WAITING.id == db.Awaited.message_pk)
    .where(db.Awaited.parent == bindparam("parent"), _WAITING.outcome == WAITING)
)


def children(session: Session, message_id: str | None) -> list[Held]:
    """The mails waiting for this one, oldest first."""
    if not message_id:
        return []
    rows = db.run(session, _CHILDREN, parent=message_id)
    return [Held(row.id, row.key, row.source, row.raw) for row in rows]


def due(session: Session, now: datetime) -> Held | None:
    """One mail whose wait is over, its row locked (several daemons share the work)."""
    pk = session.scalar(
        select(db.Awaited.message_pk)
        .where(db.Awaited.until <= now)
        .order_by(db.Awaited.until, db.Awaited.message_pk)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if pk is None:
        return None
    row = session.execute(
        select(db.Message.id, db.Message.key, db.Message.source, db.Message.raw).where(
            db.Message.id == pk
        )
    ).one()
    return Held(row.id, row.key, row.source, row.raw)


def forget(session: Session, pk: int) -> None:
    """The mail no longer waits."""
    session.execute(delete(db.Awaited).where(db.Awaited.message_pk == pk))


def take(session: Session, pk: int) -> bool:
    """Claim the waiting mail for applying it now; False when another transaction (its
    parent's, or the job's in another daemon) took it first."""
    forget(session, pk)
    result = session.execute(
        update(db.Message)
        .where(db.Message.id == pk, db.Message.outcome == WAITING)
        .values(outcome="pending")
    )
    return bool(getattr(result, "rowcount", 0))


def give_up(session: Session, pk: int, reason: str) -> None:
    """A waiting mail that cannot be applied: quarantined (it stays stored), never retried."""
    forget(session, pk)
    session.execute(
        update(db.Message).where(db.Message.id == pk).values(outcome="quarantined", reason=reason)
    )
