"""Which key a mail is stored under, so that exactly-once neither applies twice nor drops.

The key is the Message-ID (else the fingerprint). A stored mail under that key with the same
fingerprint is this mail again — another delivery, perhaps with other trace headers — and a
duplicate. One with a different fingerprint is another mail reusing the id (a broken mailer,
or someone copying an id from a thread to have their mail dropped): that mail is applied
under its content key, `sha256:<fingerprint>`, which a second delivery of it shares too, and
its row says why. Mail stored before fingerprints were kept counts as the same mail.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc import db
from mailproc.mail import InboundMail


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    duplicate: bool  # a row under this key is this same mail
    note: str | None = None  # why the key is not the Message-ID


def claim(session: Session, mail: InboundMail) -> Claim:
    stored = _fingerprint_under(session, mail.key)
    if stored is None:
        return Claim(mail.key, False)
    if stored in ("", mail.fingerprint) or mail.message_id is None:
        return Claim(mail.key, True)
    key = f"sha256:{mail.fingerprint}"
    note = (
        f"Message-ID <{mail.message_id}> was already used by another mail; applied under "
        "its content key"
    )
    return Claim(key, _fingerprint_under(session, key) is not None, note)


def _fingerprint_under(session: Session, key: str) -> str | None:
    """The stored fingerprint under the key ('' for an old row without one); None: no row."""
    row = session.execute(select(db.Message.fingerprint).where(db.Message.key == key)).first()
    if row is None:
        return None
    return row.fingerprint or ""
