"""Mail about no one incident: the answer to a query, a digest, one pass's escalations folded
into one mail. Queued in the outbox like any notice, inside the caller's transaction.

Such a row has no incident. Its Message-ID (and, with `notifications.reply_address = "plus"`,
its Reply-To token) is made for "incident 0", the desk itself: a reply to it proves its sender
as a reply to a notice does (mailproc.workflow.proof), so a solver can answer a digest with
`[LIST]` or a folded escalation with `[ACK INC-n]`; it threads to no incident. Nothing is
recorded in thread_refs, and the subject carries no `[INC-n]`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailproc.notify.context import desk_context
from mailproc.notify.letter import (
    AUTO_GENERATED,
    AUTO_REPLIED,
    Letter,
    check_addresses,
    letter_to_json,
    one_line,
)
from mailproc.notify.outbox import Outbox
from mailproc.notify.readers import reader_of
from mailproc.notify.recipients import Notice, Recipient
from mailproc.notify.templates import TemplateProblem
from mailproc.safety import undeliverable
from mailproc.store import db
from mailproc.vocabulary import NoticeKind

log = logging.getLogger(__name__)
DESK = 0  # the "incident" of the desk's own Message-IDs and reply tokens


def queue_desk(
    outbox: Outbox,
    session: Session,
    kind: NoticeKind,
    recipient: Recipient,
    payload: Mapping[str, Any],
    now: datetime,
    *,
    trigger: str | None = None,
    held: str | None = None,
) -> bool:
    """Queue one; False when it was not queued to be sent (suppressed: `held` says why, or the
    address is undeliverable; or failed: a template or an address is wrong)."""
    settings = outbox.settings
    if not settings.notifications.enabled:
        return False
    email, service = recipient.email, settings.default_service
    sender = outbox.sender_of(service)
    row: dict[str, Any] = {
        "incident_id": None,
        "kind": kind.value,
        "recipient": email,
        "envelope_from": sender,
        "message_id": outbox.new_message_id(DESK, email, sender),
        "subject": "",
        "letter": None,
        "attempts": 0,
        "created_at": now,
        "next_attempt_at": now,
    }
    mark = undeliverable.marks(session, [email], now, settings.bounces).get(email)
    why = held or (mark.describe() if mark is not None else None)
    if why is not None:
        log.info("%s to %s suppressed: %s", kind, email, why)
        row |= {"status": db.SUPPRESSED, "error": why}
    else:
        row |= _rendered(outbox, kind, recipient, payload, now, row["message_id"], trigger)
    rows = db.Rows()
    rows.add(db.Outbox, **row)
    rows.write(session)
    return bool(row["status"] == db.PENDING)


def _rendered(
    outbox: Outbox,
    kind: NoticeKind,
    recipient: Recipient,
    payload: Mapping[str, Any],
    now: datetime,
    message_id: str,
    trigger: str | None,
) -> dict[str, Any]:
    settings = outbox.settings
    try:
        service = settings.default_service
        reader = reader_of(recipient.email, settings, service, None, recipient.name)
        context = desk_context(Notice(kind, recipient), settings, now, payload, reader)
        rendered = outbox.templates.render(kind, service, context, reader.language)
        letter = Letter(
            subject=one_line(rendered.subject),
            text=rendered.text,
            html=rendered.html,
            from_name=settings.notifications.from_name,
            from_address=outbox.sender_of(settings.default_service),
            to_name=recipient.name,
            to_address=recipient.email,
            reply_to=outbox.reply_to_of(settings.default_service, DESK, recipient.email),
            message_id=message_id,
            in_reply_to=trigger,
            references=(trigger,) if trigger else (),
            auto_submitted=AUTO_REPLIED if kind is NoticeKind.ANSWER else AUTO_GENERATED,
            date=now,
        )
        check_addresses(letter)
    except (TemplateProblem, ValueError) as exc:
        log.error("%s to %s not sent: %s", kind, recipient.email, exc)
        return {"status": db.FAILED, "error": str(exc)}
    json = letter_to_json(letter)
    return {"status": db.PENDING, "subject": letter.subject, "letter": json, "error": None}
