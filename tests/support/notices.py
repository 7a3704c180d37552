"""Read the notices the Desk queued as their recipients will get them, and answer them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailproc.inbound.parse import InboundMail, parse_mail
from mailproc.notify.letter import compose, letter_from_json
from mailproc.notify.sender import enclosed
from mailproc.store import db
from tests.support.mailfactory import make_mail


def notice_to(engine: Engine, recipient: str, kind: str | None = None) -> InboundMail:
    """The last mail queued for `recipient`, parsed as it will go out."""
    with Session(engine) as session:
        query = select(db.Outbox.letter).where(db.Outbox.recipient == recipient)
        if kind is not None:
            query = query.where(db.Outbox.kind == kind)
        letter = session.scalars(query.order_by(db.Outbox.id.desc()).limit(1)).one()
    return _parsed(engine, letter)


def _parsed(engine: Engine, data: dict[str, Any]) -> InboundMail:
    letter = letter_from_json(data)
    return parse_mail(compose(letter, enclosed(engine, letter)))


def letters_to(engine: Engine, recipient: str) -> list[InboundMail]:
    """Every mail queued for `recipient` (suppressed and failed ones have no letter)."""
    with Session(engine) as session:
        rows = session.scalars(
            select(db.Outbox.letter)
            .where(db.Outbox.recipient == recipient, db.Outbox.letter.is_not(None))
            .order_by(db.Outbox.id)
        ).all()
    return [_parsed(engine, letter) for letter in rows]


def answer(
    notice: InboundMail,
    sender: str,
    subject: str,
    authenticated: bool = False,
    body: str = "Nobody can send mail since 9:00.",
) -> bytes:
    """A reply as a mail client writes it: to the notice's Reply-To, threaded on it."""
    (reply_to,) = notice.reply_to
    return make_mail(
        sender=sender,
        to=reply_to.email,
        subject=subject,
        body=body,
        in_reply_to=notice.message_id,
        authenticated=authenticated,
    )
