"""What notices are written from, read from the store: the parties of an incident, its facts
for the template context, and the earlier mails a new one threads onto.

The reads only; turning a change into outbox rows is mailproc.notify.outbox. A caller that has
already read something in its transaction (the Desk) hands it over as `Known`, so that the path
applying incoming mail reads nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.notify.context import HistoryEntry, IncidentFacts, ProblemFacts
from mailproc.notify.recipients import Parties, Person
from mailproc.sla.state import history
from mailproc.sla.timeline import Record
from mailproc.store import db
from mailproc.store.prepared import Prepared, fixed_list, fixed_values


@dataclass(frozen=True, slots=True)
class Known:
    """What the caller already read or wrote in this transaction about the incident, so its
    notices cost no further queries: on the path that applies incoming mail, every query
    counts."""

    history: Sequence[Record]
    watchers: frozenset[str]
    problems: frozenset[int]
    new: bool = False  # created in this transaction: no earlier mail, nothing sent yet


def parties_of(
    session: Session,
    incident: db.Incident,
    actor: Person,
    settings: Settings,
    watchers: frozenset[str] | None = None,
) -> Parties:
    person = settings.people.get(incident.assignee) if incident.assignee else None
    service = settings.services[incident.service]
    if watchers is None:
        watchers = frozenset(
            session.scalars(
                select(db.Participant.email).where(db.Participant.incident_id == incident.id)
            )
        )
    return Parties(
        reporter=Person(incident.reporter, incident.reporter_name),
        assignee=Person(person.email, incident.assignee or "") if person else None,
        watchers=tuple(sorted(watchers)),
        team=service.team,
        first_line=service.first_line,
        sender=actor,
        admins=settings.admin_addresses,
    )


def incident_facts(
    session: Session, incident: db.Incident, known: Known | None = None
) -> IncidentFacts:
    events = history(session, incident.id) if known is None else known.history
    problems: Sequence[db.Problem] = ()
    if known is None:
        problems = session.scalars(
            select(db.Problem)
            .join(db.IncidentProblem, db.IncidentProblem.problem_id == db.Problem.id)
            .where(db.IncidentProblem.incident_id == incident.id)
            .order_by(db.Problem.id)
        ).all()
    elif known.problems:  # the links of this very mail may not be written yet
        problems = session.scalars(
            select(db.Problem).where(db.Problem.id.in_(known.problems)).order_by(db.Problem.id)
        ).all()
    return IncidentFacts(
        number=incident.id,
        title=incident.title,
        service=incident.service,
        status=incident.status,
        priority=incident.priority,
        assignee=incident.assignee,
        reporter=incident.reporter,
        reporter_name=incident.reporter_name,
        created_at=incident.created_at,
        updated_at=incident.updated_at,
        closed_at=incident.closed_at,
        follow_up_of=incident.follow_up_of,
        history=tuple(HistoryEntry(e.at, e.actor, e.kind, e.detail) for e in events),
        problems=tuple(
            ProblemFacts(p.id, p.title, p.symptoms, p.workaround, p.status) for p in problems
        ),
    )


_ROOT = Prepared(
    select(db.Message.message_id)
    .where(db.Message.incident_id == bindparam("incident"), db.Message.message_id.is_not(None))
    .order_by(db.Message.id)
    .limit(1)
)


@lru_cache(maxsize=32)
def _last_sent(count: int) -> Prepared:
    """For `count` recipients (bound as to0, to1, …): compiled once per count."""
    return Prepared(
        select(db.Outbox.recipient, db.Outbox.message_id)
        .where(
            db.Outbox.incident_id == bindparam("incident"),
            db.Outbox.recipient.in_(fixed_list("to", count)),
            db.Outbox.status != db.SUPPRESSED,  # never sent: no mail client knows it
        )
        .order_by(db.Outbox.id)
    )


def thread_root(session: Session, number: int) -> str | None:
    """The first mail of the incident that had a Message-ID: the thread's root."""
    root: str | None = _ROOT(session, incident=number).scalar()
    return root


def last_sent(session: Session, number: int, recipients: list[str]) -> dict[str, str]:
    """Our last mail to each person about this incident: the parent their client knows."""
    if not recipients:
        return {}
    wanted = sorted(set(recipients))
    rows = _last_sent(len(wanted))(session, incident=number, **fixed_values("to", wanted))
    return {row.recipient: row.message_id for row in rows}
