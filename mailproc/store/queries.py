"""Read models for the CLI and the export: incidents with their history, as plain data.

Reads only; every function opens a short read transaction and returns frozen values, so
callers never hold ORM objects outside a session.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, exists, func, select
from sqlalchemy.orm import Session

from mailproc.store import db
from mailproc.vocabulary import EventKind


class UnknownIncident(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class EventView:
    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    number: int
    service: str
    status: str
    priority: str
    title: str
    reporter: str
    assignee: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None

    @property
    def ref(self) -> str:
        return f"INC-{self.number}"


@dataclass(frozen=True, slots=True)
class NotificationView:
    """One outbox row as people see it: what went (or goes, or failed to go) to whom."""

    id: int
    incident: int | None  # None: mail about no one incident (an answer, a digest)
    created_at: datetime
    kind: str
    recipient: str
    subject: str
    status: str
    attempts: int
    error: str | None
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class AttachmentView:
    """A file that came with one of the incident's mails; `number` counts from 1 within the
    incident, in the order the mails came (what `attachments get INC-n N` takes)."""

    number: int
    filename: str
    content_type: str
    size: int
    sha256: str
    sender: str
    received_at: datetime
    internal: bool  # it came with an internal note: for the desk's own people only


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    incident: IncidentSummary
    problems: tuple[int, ...]
    events: tuple[EventView, ...]
    message_ids: tuple[str, ...]
    follow_up_of: int | None
    notifications: tuple[NotificationView, ...] = ()
    attachments: tuple[AttachmentView, ...] = ()
    merged_into: int | None = None  # a duplicate folded into that incident
    merged: tuple[int, ...] = ()  # the duplicates folded into this one


def _summary(row: db.Incident) -> IncidentSummary:
    return IncidentSummary(
        number=row.id,
        service=row.service,
        status=row.status,
        priority=row.priority,
        title=row.title,
        reporter=row.reporter,
        assignee=row.assignee,
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
    )


def list_incidents(
    engine: Engine, status: str | None = None, service: str | None = None
) -> list[IncidentSummary]:
    query = select(db.Incident).order_by(db.Incident.id)
    if status is not None:
        query = query.where(db.Incident.status == status)
    if service is not None:
        query = query.where(db.Incident.service == service)
    with Session(engine) as session:
        return [_summary(row) for row in session.scalars(query)]


def get_incident(engine: Engine, number: int) -> IncidentDetail:
    with Session(engine) as session:
        row = session.get(db.Incident, number)
        if row is None:
            raise UnknownIncident(f"no incident INC-{number}")
        return _detail(session, row)


def _detail(session: Session, row: db.Incident) -> IncidentDetail:
    events = session.scalars(
        select(db.Event).where(db.Event.incident_id == row.id).order_by(db.Event.id)
    )
    problems = session.scalars(
        select(db.IncidentProblem.problem_id)
        .where(db.IncidentProblem.incident_id == row.id)
        .order_by(db.IncidentProblem.problem_id)
    )
    message_ids = session.scalars(
        select(db.ThreadRef.message_id)
        .where(db.ThreadRef.incident_id == row.id)
        .order_by(db.ThreadRef.message_id)
    )
    outbox = session.scalars(
        select(db.Outbox).where(db.Outbox.incident_id == row.id).order_by(db.Outbox.id)
    )
    return IncidentDetail(
        incident=_summary(row),
        problems=tuple(problems),
        events=tuple(EventView(e.at, e.actor, e.kind, e.detail) for e in events),
        message_ids=tuple(message_ids),
        follow_up_of=row.follow_up_of,
        notifications=tuple(_notification(n) for n in outbox),
        attachments=tuple(attachments_of(session, row.id)),
        merged_into=row.merged_into,
        merged=tuple(duplicates_of(session, row.id)),
    )


def duplicates_of(session: Session, number: int, limit: int = 20) -> list[int]:
    """The incidents merged into this one, and those merged into them, at most `limit` deep."""
    found: list[int] = []
    frontier = [number]
    for _ in range(limit):
        frontier = list(
            session.scalars(
                select(db.Incident.id)
                .where(db.Incident.merged_into.in_(frontier))
                .order_by(db.Incident.id)
            )
        )
        frontier = [n for n in frontier if n not in found and n != number]
        if not frontier:
            break
        found += frontier
    return found


def attachments_of(session: Session, number: int) -> list[AttachmentView]:
    """The files of the incident's mails, numbered in the order they came; then those of
    the duplicates merged into it (so a merge never renumbers the incident's own files)."""
    noted = exists().where(
        db.Event.message_pk == db.Attachment.message_pk, db.Event.kind == EventKind.NOTE.value
    )
    own = case((db.Message.incident_id == number, 0), else_=1)
    rows = session.execute(
        select(db.Attachment, db.Message.sender, db.Message.received_at, noted.label("internal"))
        .join(db.Message, db.Message.id == db.Attachment.message_pk)
        .where(db.Message.incident_id.in_([number, *duplicates_of(session, number)]))
        .order_by(own, db.Message.id, db.Attachment.position)
    )
    return [
        AttachmentView(
            n,
            row.Attachment.filename,
            row.Attachment.content_type,
            row.Attachment.size,
            row.Attachment.sha256,
            row.sender,
            row.received_at,
            bool(row.internal),
        )
        for n, row in enumerate(rows, 1)
    ]


def attachment_count(session: Session, number: int) -> int:
    """How many files the incident's mails brought so far (the mail being applied aside)."""
    count = session.scalar(
        select(func.count())
        .select_from(db.Attachment)
        .join(db.Message, db.Message.id == db.Attachment.message_pk)
        .where(db.Message.incident_id == number)
    )
    return int(count or 0)


def list_attachments(engine: Engine, number: int) -> list[AttachmentView]:
    with Session(engine) as session:
        if session.get(db.Incident, number) is None:
            raise UnknownIncident(f"no incident INC-{number}")
        return attachments_of(session, number)


class UnknownAttachment(LookupError):
    pass


def attachment_bytes(engine: Engine, number: int, position: int) -> tuple[AttachmentView, bytes]:
    """The incident's `position`th file (from 1) and its bytes."""
    files = list_attachments(engine, number)
    if not 1 <= position <= len(files):
        have = f"it has {len(files)}" if files else "it has none"
        raise UnknownAttachment(f"INC-{number} has no attachment {position}: {have}")
    found = files[position - 1]
    with Session(engine) as session:
        content = session.scalar(select(db.Blob.content).where(db.Blob.sha256 == found.sha256))
    if content is None:
        raise UnknownAttachment(f"the bytes of INC-{number}'s attachment {position} are missing")
    return found, bytes(content)


def notifications(engine: Engine, after: int = 0) -> list[NotificationView]:
    """Outbox rows with an id above `after`, oldest first."""
    with Session(engine) as session:
        rows = session.scalars(select(db.Outbox).where(db.Outbox.id > after).order_by(db.Outbox.id))
        return [_notification(n) for n in rows]


def _notification(row: db.Outbox) -> NotificationView:
    return NotificationView(
        id=row.id,
        incident=row.incident_id,
        created_at=row.created_at,
        kind=row.kind,
        recipient=row.recipient,
        subject=row.subject,
        status=row.status,
        attempts=row.attempts,
        error=row.error,
        sent_at=row.sent_at,
    )


def to_json(value: Any) -> Any:
    """Dataclasses and datetimes as JSON-ready values (ISO 8601 times)."""
    if hasattr(value, "__dataclass_fields__"):
        data = asdict(value)
        if hasattr(value, "ref"):
            data["ref"] = value.ref
        return to_json(data)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
