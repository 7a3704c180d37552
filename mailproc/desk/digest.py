"""The queue by mail, on a schedule: each solver's open incidents (breached, at risk, waiting,
the rest), each team's unassigned, breached and at-risk ones, at the configured times
(`[digest]`) in the calendar's time zone; an empty digest is not sent.

`send_digests` finds the latest scheduled moment not longer ago than `digest.late_minutes`
(a daemon that was down at 08:00 sends the 08:00 digest when it starts, but not the next day).
Each recipient's digest is claimed by a `digests` row unique on (recipient, moment), in a
transaction of its own with its outbox row, so several daemons, a second run or a crash never
send one twice. The daemon's `digest` job runs it every minute; `mailproc digest --once`
for cron. The due times and standings are the stored SLA state (mailproc.sla.views).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine
from sqlalchemy.orm import Session

from mailproc.calendars import WEEK, zone_named
from mailproc.clock import WallClock
from mailproc.config.settings import Settings
from mailproc.desk.queries import line_facts, listed
from mailproc.notify.desk_letters import queue_desk
from mailproc.notify.outbox import Outbox
from mailproc.notify.recipients import Recipient, recipients_of
from mailproc.sla.views import AT_RISK, BREACHED, open_lines
from mailproc.store import db
from mailproc.vocabulary import NoticeKind, Party, Role

#: Each section's `kind`, and its `title` in the default templates' English (a translated
#: template names the section by its kind).
TITLES = {
    "unassigned": "Unassigned",
    "breached": "Breached",
    "at_risk": "At risk",
    "waiting": "Waiting for the reporter",
    "open": "Open",
}


@dataclass(frozen=True, slots=True)
class DigestReader:
    """Someone a digest goes to, and which open incidents are theirs to see."""

    recipient: Recipient
    solver: str | None  # a solver's own queue, by name; None: a list's services
    services: tuple[str, ...] = ()


def due_slot(settings: Settings, now: datetime) -> datetime | None:
    """The latest scheduled digest moment at or before `now`, if it is recent enough."""
    config = settings.digest
    zone = _zone(settings)
    local = now.astimezone(zone)
    late = timedelta(minutes=config.late_minutes)
    for day in (local.date(), local.date() - timedelta(days=1)):
        if WEEK[day.weekday()] not in config.days:
            continue
        for moment in sorted(config.at, reverse=True):
            hour, minute = (int(part) for part in moment.split(":"))
            slot = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(now.tzinfo)
            if slot <= now:
                return slot if now - slot <= late else None
    return None


def send_digests(settings: Settings, engine: Engine, clock: WallClock, outbox: Outbox) -> int:
    """Queue the digests due now; returns how many were queued (empty ones are not)."""
    now = clock()
    slot = due_slot(settings, now)
    if slot is None or not settings.notifications.enabled:
        return 0
    sent = 0
    for reader in readers(settings):
        with Session(engine) as session, session.begin():
            if not _claim(session, reader.recipient.email, slot):
                continue  # sent already, by this process or another
            sent += _digest(session, settings, outbox, reader, slot, now)
    return sent


def readers(settings: Settings) -> Iterator[DigestReader]:
    """The digest's recipients: each solver (`assignee`), each team or first-line list
    (`team`, `first_line`: the services it serves)."""
    roles = set(recipients_of(NoticeKind.DIGEST, settings.default_service, settings))
    if Party.ASSIGNEE in roles:
        for name, person in sorted(settings.people.items()):
            if person.role is Role.SOLVER:
                yield DigestReader(Recipient(person.email, name, Party.ASSIGNEE), name)
    lists: dict[str, list[str]] = {}
    for service, config in sorted(settings.services.items()):
        for role, address in ((Party.TEAM, config.team), (Party.FIRST_LINE, config.first_line)):
            if role in roles and address:
                lists.setdefault(address, []).append(service)
    for address, services in lists.items():
        yield DigestReader(Recipient(address, "", Party.TEAM), None, tuple(services))


def _digest(
    session: Session,
    settings: Settings,
    outbox: Outbox,
    reader: DigestReader,
    slot: datetime,
    now: datetime,
) -> int:
    parts = _sections(session, settings, reader, now)
    count = len({line["number"] for _, lines in parts for line in lines})
    if not count:
        return 0
    sections = [{"kind": kind, "title": TITLES[kind], **listed(lines)} for kind, lines in parts]
    payload = {
        "digest": {
            "for": reader.solver,
            "team": list(reader.services) or None,
            "at": slot,
            "sections": sections,
            "count": count,
        }
    }
    _count(session, reader.recipient.email, slot, count)
    return int(queue_desk(outbox, session, NoticeKind.DIGEST, reader.recipient, payload, now))


def _sections(
    session: Session, settings: Settings, reader: DigestReader, now: datetime
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The digest's sections, each with all its incidents; the empty ones left out."""
    incident = db.Incident
    where: ColumnElement[bool] = (
        incident.assignee == reader.solver
        if reader.solver is not None
        else incident.service.in_(reader.services)
    )
    lines = [line_facts(line, settings) for line in open_lines(session, settings, now, where)]
    if reader.solver is None:
        taken = [line for line in lines if line["assignee"]]  # the rest: under Unassigned
        parts = [
            ("unassigned", [line for line in lines if not line["assignee"]]),
            ("breached", [line for line in taken if line["standing"] == BREACHED]),
            ("at_risk", [line for line in taken if line["standing"] == AT_RISK]),
        ]
    else:
        waiting = [line for line in lines if line["waiting"]]
        rest = [line for line in lines if line["standing"] not in (BREACHED, AT_RISK)]
        parts = [
            ("breached", [line for line in lines if line["standing"] == BREACHED]),
            ("at_risk", [line for line in lines if line["standing"] == AT_RISK]),
            ("waiting", waiting),
            ("open", [line for line in rest if not line["waiting"]]),
        ]
    return [(kind, found) for kind, found in parts if found]


def _claim(session: Session, recipient: str, slot: datetime) -> bool:
    insert = db.insert_ignoring(session.get_bind().dialect.name, db.Digest)
    values = {"recipient": recipient, "slot": slot, "incidents": 0}
    result = session.execute(insert.values(values).returning(db.Digest.recipient))
    return result.first() is not None


def _count(session: Session, recipient: str, slot: datetime, count: int) -> None:
    row = session.get(db.Digest, (recipient, slot))
    if row is not None:
        row.incidents = count


def _zone(settings: Settings) -> ZoneInfo:
    name = settings.digest.calendar or settings.sla.calendar
    return zone_named(settings.calendars[name].zone or settings.locale.zone)
