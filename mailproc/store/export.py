"""Export incidents as JSON Lines: fields, history and mail Message-IDs, one incident a line.

For backups, migrations and reports, and for the benchmark's correctness check. Streams in
id order with bounded memory, so a database of any size exports in one pass; an incident's
mails are listed in the order they arrived.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import Engine, exists, select
from sqlalchemy.orm import Session

from mailproc.store import db
from mailproc.vocabulary import INTERNAL_EVENTS

CHUNK = 500


def export_lines(
    engine: Engine, since: datetime | None = None, public: bool = False
) -> Iterator[dict[str, Any]]:
    """Incidents updated at or after `since` (all when None), oldest id first. `public`: for
    the reporter's eyes, without internal notes and the other internal records
    (mailproc.vocabulary.INTERNAL_EVENTS)."""
    last = 0
    with Session(engine) as session:
        while True:
            query = select(db.Incident).where(db.Incident.id > last)
            if since is not None:
                query = query.where(db.Incident.updated_at >= since)
            rows = session.scalars(query.order_by(db.Incident.id).limit(CHUNK)).all()
            if not rows:
                return
            yield from _chunk(session, rows, public)
            last = rows[-1].id
            session.expunge_all()


def _chunk(session: Session, rows: Sequence[db.Incident], public: bool) -> Iterator[dict[str, Any]]:
    ids = [row.id for row in rows]
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    query = select(db.Event).where(db.Event.incident_id.in_(ids)).order_by(db.Event.id)
    if public:
        query = query.where(db.Event.kind.not_in(sorted(INTERNAL_EVENTS)))
    for e in session.scalars(query):
        events[e.incident_id].append(
            {"at": e.at.isoformat(), "actor": e.actor, "kind": e.kind, "detail": e.detail}
        )
    mails: dict[int, list[str]] = defaultdict(list)
    for ref in session.execute(  # the mails it received, in the order they arrived
        select(db.Message.incident_id, db.Message.message_id)
        .where(
            db.Message.incident_id.in_(ids),
            db.Message.outcome == "processed",
            db.Message.message_id.is_not(None),
        )
        .order_by(db.Message.id)
    ):
        if ref.message_id not in mails[ref.incident_id]:
            mails[ref.incident_id].append(ref.message_id)
    files: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for file in _files(session, ids, public):
        files[file.incident_id].append(
            {
                "filename": file.filename,
                "content_type": file.content_type,
                "size": file.size,
                "sha256": file.sha256,
                "message_id": file.message_id,
            }
        )
    problems: dict[int, list[int]] = defaultdict(list)
    for link in session.execute(
        select(db.IncidentProblem.incident_id, db.IncidentProblem.problem_id).where(
            db.IncidentProblem.incident_id.in_(ids)
        )
    ):
        problems[link.incident_id].append(link.problem_id)
    for row in rows:
        yield {
            "ref": f"INC-{row.id}",
            "number": row.id,
            "service": row.service,
            "status": row.status,
            "priority": row.priority,
            "title": row.title,
            "reporter": row.reporter,
            "assignee": row.assignee,
            "follow_up_of": row.follow_up_of,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
            "closed_at": row.closed_at.isoformat() if row.closed_at else None,
            "problems": sorted(problems[row.id]),
            "message_ids": mails[row.id],
            "attachments": files[row.id],
            "events": events[row.id],
        }


def _files(session: Session, ids: list[int], public: bool) -> Sequence[Any]:
    """The incidents' attachments (metadata; the bytes are in blobs, by sha256), in the order
    their mails came; for the public, not those of internal notes."""
    query = (
        select(
            db.Message.incident_id,
            db.Message.message_id,
            db.Attachment.filename,
            db.Attachment.content_type,
            db.Attachment.size,
            db.Attachment.sha256,
        )
        .join(db.Message, db.Message.id == db.Attachment.message_pk)
        .where(db.Message.incident_id.in_(ids))
        .order_by(db.Message.id, db.Attachment.position)
    )
    if public:
        noted = exists().where(
            db.Event.message_pk == db.Attachment.message_pk,
            db.Event.kind.in_(sorted(INTERNAL_EVENTS)),
        )
        query = query.where(~noted)
    return session.execute(query).all()


def write_jsonl(
    engine: Engine, out: TextIO, since: datetime | None = None, public: bool = False
) -> int:
    count = 0
    for line in export_lines(engine, since, public):
        out.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count
