"""The administrators' corrections from the command line (`mailproc incidents assign|…`):
the same workflow, permissions aside, the same history and the same notices as a mail's.

A command line is written in the subject language (`[ASSIGN tina]`), so it is parsed,
decided and refused exactly as in mail; its text, if any, is a comment or an internal note.
One transaction, the incident's row locked as the Desk locks it for a mail. The actor is a
configured person the administrator names (their permissions apply), or the login that ran
the command, trusted as an admin: whoever can run it can write the database anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mailproc.clock import WallClock
from mailproc.config.settings import Settings
from mailproc.desk.writes import Writes, lock_incident, read_incident, save_incident, view_of
from mailproc.inbound.subject import parse_subject
from mailproc.notify.outbox import Outbox
from mailproc.sla.state import SlaBook
from mailproc.store import db
from mailproc.store.queries import UnknownIncident
from mailproc.workflow.decision import Actor, Refusal
from mailproc.workflow.intents import Reply


class UnknownPerson(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Corrected:
    """What a command line did: the Desk's summary, what was refused, who is told."""

    incident: int
    summary: str
    applied: tuple[str, ...]
    refused: tuple[Refusal, ...]
    notices: tuple[tuple[str, str], ...]  # (kind, recipient)


def actor_for(settings: Settings, person: str | None, login: str) -> Actor:
    """`person`: a configured person's name or address, acting with their permissions;
    None: the login, as an admin."""
    if person is None:
        return Actor(f"cli:{login}", None, trusted=True)
    wanted = person.strip().lower()
    for name, config in settings.people.items():
        if wanted in (name.lower(), config.email):
            return Actor(config.email, name)
    raise UnknownPerson(f"no configured person {person!r} (people: {', '.join(settings.people)})")


def correct(
    settings: Settings,
    engine: Engine,
    clock: WallClock,
    number: int,
    line: str,
    actor: Actor,
    text: str = "",
    note: bool = False,
) -> Corrected:
    """Apply the commands of `line` (subject language) and `text` to incident `number`."""
    outbox, book, now = Outbox(settings), SlaBook(settings), clock()
    commands = parse_subject(line, settings.language).commands
    with Session(engine) as session, session.begin():
        incident = lock_incident(session, number)
        if incident is None:
            raise UnknownIncident(f"no incident INC-{number}")
        before = session.scalar(select(func.max(db.Outbox.id))) or 0
        read = read_incident(session, number, None)
        view = view_of(session, incident, read)
        writes = Writes(settings, session, None, actor, now, None, outbox, book)
        writes.knowing(number, read)
        intent = Reply(number, text.strip(), commands, True, False, note=note)
        summary = writes.reply(intent, incident, view)
        writes.write()
        save_incident(session, incident)
        decision = writes.decided
        queued = session.execute(
            select(db.Outbox.kind, db.Outbox.recipient)
            .where(db.Outbox.id > before, db.Outbox.status != db.SUPPRESSED)
            .order_by(db.Outbox.id)
        ).all()
    return Corrected(
        number,
        summary.removeprefix(f"reply to INC-{number}; "),
        decision.applied if decision else (),
        decision.refused if decision else (),
        tuple((row.kind, row.recipient) for row in queued),
    )
