"""What an administrator reads about automatic mail, dead addresses and the limits.

Reads only, each in a short read transaction, returning plain values; the text forms are what
`mailproc automatic list`, `mailproc undeliverable list` and `mailproc limits` print.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.safety.kept_mail import AUTOMATIC
from mailproc.safety.limits import ALL, WINDOW, answers, breakers
from mailproc.safety.undeliverable import Mark
from mailproc.store import db


@dataclass(frozen=True, slots=True)
class AutomaticMail:
    id: int
    received_at: datetime
    kind: str  # bounce, autoreply, bulk, loop
    reason: str
    sender: str
    subject: str
    incident: int | None
    source: str


@dataclass(frozen=True, slots=True)
class BreakerView:
    scope: str
    open: bool
    opened_at: datetime
    closed_at: datetime | None
    count: int
    trips: int


@dataclass(frozen=True, slots=True)
class LimitsView:
    answers: int  # in the last hour, counted up to the limit
    limit: int
    breakers: tuple[BreakerView, ...]
    senders: tuple[tuple[str, int], ...]  # over the new-incident limit in the last hour
    sender_limit: int


def automatic_mail(engine: Engine, limit: int = 50, kind: str | None = None) -> list[AutomaticMail]:
    """The most recent automatic mail first (through the outcome index)."""
    query = select(db.Message).where(db.Message.outcome == AUTOMATIC)
    if kind is not None:
        query = query.where(db.Message.reason.like(f"{kind}:%"))
    with Session(engine) as session:
        rows = session.scalars(query.order_by(db.Message.id.desc()).limit(limit))
        return [_automatic(row) for row in rows]


def _automatic(row: db.Message) -> AutomaticMail:
    kind, _, reason = (row.reason or "").partition(": ")
    return AutomaticMail(
        row.id, row.received_at, kind, reason, row.sender, row.subject, row.incident_id, row.source
    )


def limits(engine: Engine, settings: Settings, now: datetime) -> LimitsView:
    config = settings.limits
    since = now - WINDOW
    with Session(engine) as session:
        count = answers(session, since)
        rows = [
            BreakerView(b.scope, b.closed_at is None, b.opened_at, b.closed_at, b.count, b.trips)
            for b in breakers(session)
        ]
        over = session.execute(
            select(db.Incident.reporter, func.count())
            .where(db.Incident.created_at > since)
            .group_by(db.Incident.reporter)
            .having(func.count() > config.new_incidents_per_sender_per_hour)
            .order_by(func.count().desc())
        ).all()
    senders = tuple((str(r), int(n)) for r, n in over)
    limit = config.new_incidents_per_sender_per_hour
    return LimitsView(count, config.replies_per_hour, tuple(rows), senders, limit)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def automatic_table(mails: list[AutomaticMail]) -> str:
    lines = [f"{'RECEIVED':<16} {'KIND':<9} {'INCIDENT':<8} {'SENDER':<30} SUBJECT / REASON"]
    for m in mails:
        incident = f"INC-{m.incident}" if m.incident else "-"
        lines.append(
            f"{_when(m.received_at):<16} {m.kind:<9} {incident:<8} {m.sender or '-':<30} "
            f"{m.subject}\n{'':<36}{m.reason}"
        )
    return "\n".join(lines)


def addresses_table(marks: list[Mark]) -> str:
    head = f"{'ADDRESS':<32} {'SCORE':>5} {'SUSPENDED':<16} {'PROBE':<16} {'STATUS':<8} "
    lines = [head + f"{'INCIDENT':<8} REASON"]
    for m in marks:
        incident = f"INC-{m.incident}" if m.incident else "-"
        suspended = _when(m.suspended_at) if m.suspended_at else "-"
        probe = _when(m.probe_at) if m.probe_at else "-"
        lines.append(
            f"{m.address:<32} {m.score:>5.1f} {suspended:<16} {probe:<16} {m.status:<8} "
            f"{incident:<8} {m.reason}"
        )
    return "\n".join(lines)


def limits_text(view: LimitsView) -> str:
    state = "open" if any(b.open and b.scope == ALL for b in view.breakers) else "closed"
    lines = [
        f"answers (acknowledgments, transcripts) in the last hour: {view.answers} of "
        f"{view.limit}; storm breaker {state}"
    ]
    if view.breakers:
        lines.append("breakers:")
        for b in view.breakers:
            fate = f"open since {_when(b.opened_at)}" if b.open else f"closed {_when(b.closed_at)}"
            scope = "all answers" if b.scope == ALL else b.scope
            lines.append(f"  {scope:<40} {fate} ({b.count} answers at the last opening, ")
            lines[-1] += f"{b.trips} opening(s))"
    lines.append(
        f"senders over {view.sender_limit} new incidents in the last hour: "
        + (", ".join(f"{s} ({n})" for s, n in view.senders) or "none")
    )
    return "\n".join(lines)
