"""Which key a mail is stored under, so that exactly-once neither applies twice nor drops.

The key is the Message-ID (else the fingerprint). A stored mail under that key with the same
fingerprint is this mail again — another delivery, perhaps with other trace headers — and a
duplicate. One with a different fingerprint is another mail reusing the id (a broken mailer,
or someone copying an id from a thread to have their mail dropped): that mail is applied
under its content key, `sha256:<fingerprint>`, which a second delivery of it shares too, and
its row says why. Mail stored before fingerprints were kept counts as the same mail.

The Desk claims the key first and asks here only when the claim fails, so the usual mail
pays no extra query.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.inbound.fingerprint import legacy_fingerprint
from mailproc.inbound.parse import InboundMail
from mailproc.store import db


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    duplicate: bool  # a row under this key is this same mail
    note: str | None = None  # why the key is not the Message-ID


def claim(session: Session, mail: InboundMail) -> Claim:
    """The key for the mail, looked up before inserting (the quarantine's path)."""
    if not reused(session, mail):
        return Claim(mail.key, _fingerprint_under(session, mail.key) is not None)
    key = content_key(mail)
    return Claim(key, _fingerprint_under(session, key) is not None, reuse_note(mail))


def reused(session: Session, mail: InboundMail) -> bool:
    """Whether another mail is stored under this mail's Message-ID. A row stored before the
    first hop counted in fingerprints matches this mail by the legacy fingerprint."""
    stored = _fingerprint_under(session, mail.key)
    if mail.message_id is None or stored in (None, "", mail.fingerprint):
        return False
    return stored != legacy_fingerprint(mail.raw)


def content_key(mail: InboundMail) -> str:
    return f"sha256:{mail.fingerprint}"


def legacy_key(mail: InboundMail) -> str:
    """The key a mail without Message-ID was stored under before the first hop counted."""
    return f"sha256:{legacy_fingerprint(mail.raw)}"


def reuse_note(mail: InboundMail) -> str:
    return (
        f"Message-ID <{mail.message_id}> was already used by another mail; applied under its "
        "content key"
    )


def _fingerprint_under(session: Session, key: str) -> str | None:
    """The stored fingerprint under the key ('' for an old row without one); None: no row."""
    row = session.execute(select(db.Message.fingerprint).where(db.Message.key == key)).first()
    if row is None:
        return None
    return row.fingerprint or ""
