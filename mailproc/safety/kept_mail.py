"""Keep automatic mail: never answered, never an incident, never a command, never lost.

Called by the Desk inside the mail's transaction for mail mailproc.inbound.automatic recognises as
automatic. The message row keeps it with the outcome `automatic` and the reason, for
`mailproc automatic list`. A bounce of one of our notifications goes into that incident's
history — which recipient failed, and why — and adds to that address's bounce score
(mailproc.safety.undeliverable). Any other automatic mail that threads onto an incident (an
out-of-office reply to a notice, say) is recorded in its history as well, but reopens nothing,
notifies nobody, gets no transcript and changes no time: a robot's answer is not a customer's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.inbound.automatic import AutoKind, Automatic
from mailproc.inbound.bounces import Delivery, Report, read_report
from mailproc.inbound.parse import InboundMail
from mailproc.safety import undeliverable
from mailproc.signing import read_message_id, recipient_tag
from mailproc.store import db
from mailproc.vocabulary import EventKind

AUTOMATIC = "automatic"  # the messages.outcome of automatic mail
_MONITORING = (AutoKind.AUTOREPLY, AutoKind.BULK)  # what a monitoring system's mail looks like


def screened(mail: InboundMail, found: Automatic | None, settings: Settings) -> Automatic | None:
    """Why the mail is automatic and must not be applied, given what made it automatic
    (mailproc.inbound.automatic.detect); None for a person's mail, and for a configured
    monitoring system's generated mail (`security.accept_automatic_from`), which is applied
    but, being automatic, still never answered (the Desk tells the outbox so)."""
    sender = mail.sender.email if mail.sender else ""
    accepted = sender in settings.security.accept_automatic_from
    if found is None or (accepted and found.kind in _MONITORING and not _replied(mail)):
        return None
    return found


def _replied(mail: InboundMail) -> bool:
    """An RFC 3834 auto-reply (a vacation notice), not a generated report."""
    values = mail.headers.get("auto-submitted", ())
    return any(v.split(";")[0].strip().lower() == "auto-replied" for v in values)


@dataclass(frozen=True, slots=True)
class Stored:
    """The automatic mail's row, as the Desk claimed it."""

    pk: int
    sender: str
    at: datetime
    note: str | None = None  # already on the row: a reused Message-ID, say


@dataclass(frozen=True, slots=True)
class Returned:
    """One of our mails that a bounce names: its incident (None for a desk letter: an answer
    to a query, a digest, folded escalations), and whom it went to if we know."""

    incident: int | None
    recipient: str  # '' when only the Message-ID's signature vouches for it
    kind: str  # the notice kind, '' when unknown
    tag: str  # the signed id's recipient tag, '' when the outbox row is known


def keep(
    session: Session,
    settings: Settings,
    mail: InboundMail,
    automatic: Automatic,
    message: Stored,
    found: db.Incident | None,
) -> tuple[int | None, str]:
    """Record the mail; returns the incident it was recorded on (if any) and a summary."""
    report = read_report(mail) if automatic.kind is AutoKind.BOUNCE else None
    if report is not None and report.form not in ("", "DSN"):
        automatic = replace(automatic, reason=f"{automatic.reason} ({report.form} format)")
    label = f"automatic mail ({automatic.kind}: {automatic.reason})"
    incident, summary = _file(session, settings, mail, automatic, message, found, report)
    reason = "; ".join(filter(None, (f"{automatic.kind}: {automatic.reason}", message.note)))
    session.execute(
        update(db.Message)
        .where(db.Message.id == message.pk)
        .values(outcome=AUTOMATIC, reason=reason, incident_id=incident)
    )
    return incident, summary or f"{label} kept, not answered"


def _file(
    session: Session,
    settings: Settings,
    mail: InboundMail,
    automatic: Automatic,
    message: Stored,
    found: db.Incident | None,
    report: Report | None,
) -> tuple[int | None, str]:
    """Into the history of the incident it concerns, if any: (incident, summary)."""
    incident = found.id if found is not None else None
    if report is not None:
        returned = _ours(session, settings, report.returned)
        if returned is not None and report.deliveries:
            summary = _bounce(session, settings, message, returned, report.deliveries)
            return returned.incident, summary
        if returned is not None and returned.incident is not None:
            incident = returned.incident
    if incident is None:
        return None, ""
    detail: dict[str, object] = {
        "kind": automatic.kind.value,
        "reason": automatic.reason,
        "subject": mail.subject[:300],
    }
    _event(session, message, incident, EventKind.AUTOMATIC_MAIL, detail)
    label = f"automatic mail ({automatic.kind}: {automatic.reason})"
    return incident, f"{label} recorded on INC-{incident}, not answered"


def _ours(session: Session, settings: Settings, ids: tuple[str, ...]) -> Returned | None:
    """The first id that is a mail we sent: from the outbox, else by its signature."""
    if not ids:
        return None
    rows = session.execute(
        select(
            db.Outbox.message_id,
            db.Outbox.incident_id,
            db.Outbox.recipient,
            db.Outbox.kind,
        ).where(db.Outbox.message_id.in_(set(ids)))
    ).all()
    sent = {row.message_id: row for row in rows}
    for ref in ids:
        row = sent.get(ref)
        if row is not None:  # a desk letter too: its address's bounces count all the same
            return Returned(row.incident_id, row.recipient, row.kind, "")
        signed = read_message_id(settings.verification_keys, ref)
        exists = signed is not None and session.get(db.Incident, signed.incident) is not None
        if signed is not None and signed.valid and exists:
            return Returned(signed.incident, "", "", signed.recipient_tag)
    return None


def _bounce(
    session: Session,
    settings: Settings,
    message: Stored,
    returned: Returned,
    deliveries: tuple[Delivery, ...],
) -> str:
    lines = []
    for delivery in deliveries:
        address = _bounced_address(settings, returned, delivery, len(deliveries))
        if address is None or delivery.action not in ("failed", "delayed", ""):
            continue
        permanent = delivery.permanent and delivery.action != "delayed"
        detail = {
            "recipient": address,
            "status": delivery.status,
            "action": delivery.action or "failed",
            "diagnostic": delivery.diagnostic,
            "notice": returned.kind,
            "permanent": permanent,
        }
        bounce = undeliverable.Bounce(
            address,
            delivery.status,
            delivery.diagnostic,
            permanent,
            message.at,
            returned.incident,
            message.pk,
        )
        state = undeliverable.record(session, settings.bounces, bounce)
        detail["score"] = round(state.score, 2)
        if returned.incident is not None:
            _event(session, message, returned.incident, EventKind.BOUNCED, detail)
        kind = "permanent" if permanent else "temporary"
        fate = f"{kind}, bounce score {state.score:.1f} of {settings.bounces.threshold:g}"
        if state.suspended_at == message.at:
            fate += ", address suspended"
        lines.append(f"{address} {delivery.status or '?'} {fate}")
    what = f"our {returned.kind}" if returned.kind else "our mail"
    result = "; ".join(lines) or "no failed recipient in it"
    where = f"on INC-{returned.incident}" if returned.incident is not None else "(no incident)"
    return f"bounce of {what} recorded {where}: {result}"


def _bounced_address(
    settings: Settings, returned: Returned, delivery: Delivery, reported: int
) -> str | None:
    """The address the failure is about, only if the returned mail went to it: the outbox
    row's recipient, or an address whose keyed tag the signed Message-ID carries."""
    named = {a for a in (delivery.recipient, delivery.original) if a}
    if returned.recipient:
        if returned.recipient in named or reported == 1:
            return returned.recipient
        return None
    keys = settings.verification_keys
    return next(
        (a for a in sorted(named) if any(recipient_tag(k, a) == returned.tag for k in keys)),
        None,
    )


def _event(
    session: Session,
    message: Stored,
    incident: int,
    kind: EventKind,
    detail: dict[str, object],
) -> None:
    session.add(
        db.Event(
            incident_id=incident,
            at=message.at,
            actor=message.sender,
            kind=kind.value,
            detail=detail,
            message_pk=message.pk,
        )
    )
