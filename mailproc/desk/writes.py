"""The writes that apply a change to an incident, shared by the use cases: a mail's
(mailproc.desk.mail) and the system's own (mailproc.desk.timeouts).

`Writes` keeps what one transaction has read or written per incident, so nothing is read
twice, and collects the rows it adds to write them with one statement per table. The incident's
own row is read locked and written back with one statement each (`lock_incident`,
`save_incident`), not through the ORM's unit of work; a new incident's row is written once,
its SLA columns computed before the INSERT, unless a command changes it afterwards.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    String,
    bindparam,
    cast,
    delete,
    insert,
    literal_column,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.desk.waiting import parents
from mailproc.inbound.parse import InboundMail
from mailproc.inbound.subject import BadCommand, Command
from mailproc.notify.enclosures import NO_FILES, Files, MailFile
from mailproc.notify.facts import Known
from mailproc.notify.letter import Enclosure
from mailproc.notify.outbox import Change, Outbox
from mailproc.notify.readers import mail_language
from mailproc.notify.recipients import Person
from mailproc.safety.limits import Throttle
from mailproc.sla.ladder import Sent
from mailproc.sla.state import Escalated, SlaBook, escalations, history
from mailproc.sla.timeline import Record
from mailproc.store import db
from mailproc.store.db import UTCDateTime
from mailproc.store.prepared import Prepared
from mailproc.store.queries import attachment_count
from mailproc.vocabulary import EventKind, Priority, SlaTarget, StatusKind, Verb
from mailproc.workflow.decision import (
    Actor,
    Brief,
    Decision,
    Happening,
    IncidentView,
    decide,
    reopen_by_reply,
    resume_by_reply,
)
from mailproc.workflow.intents import NewIncident, Reply

SYSTEM_ACTOR = "mailproc"


@dataclass
class Writes:
    """The writes of one mail or system action, sharing the session, the message row and the
    clock; collected, and written when the caller is done (`write`)."""

    settings: Settings
    session: Session
    message: int | None  # the incoming mail's row, if a mail caused this
    actor: Actor
    now: datetime
    mail: InboundMail | None = None
    outbox: Outbox | None = None
    sla: SlaBook | None = None
    happened: list[tuple[int, Happening]] = field(default_factory=list)
    # What this transaction read or wrote per incident, so nothing is read twice.
    records: dict[int, list[Record]] = field(default_factory=dict)
    watchers: dict[int, frozenset[str]] = field(default_factory=dict)
    problems: dict[int, frozenset[int]] = field(default_factory=dict)
    escalated: dict[int, Escalated] = field(default_factory=dict)
    created: set[int] = field(default_factory=set)
    stored: dict[int, dict[str, Any]] = field(default_factory=dict)  # incident rows as written
    rows: db.Rows = field(default_factory=db.Rows)  # written when the mail is done
    throttle: Throttle | None = None  # the sender is over the new-incident limit
    unanswered: str | None = None  # why the mail's sender gets no acknowledgment or transcript
    enclosures: list[Enclosure] = field(default_factory=list)  # the mail's files, as stored
    dropped: set[str] = field(default_factory=set)  # watchers this mail's [CC -…] removed
    decided: Decision | None = None  # the decision on the commands of the last reply

    def add(self, model: type[db.Base], **values: Any) -> None:
        self.rows.add(model, **values)

    def write(self) -> None:
        self.rows.write(self.session)

    def history(self, incident_id: int) -> list[Record]:
        if incident_id not in self.records:
            self.records[incident_id] = history(self.session, incident_id)
        return self.records[incident_id]

    def known(self, incident_id: int) -> Known:
        if incident_id not in self.watchers:
            self.watchers[incident_id] = participants_of(self.session, incident_id)
        if incident_id not in self.problems:
            self.problems[incident_id] = frozenset(_related(self.session, incident_id))
        return Known(
            self.history(incident_id),
            self.watchers[incident_id],
            self.problems[incident_id],
            new=incident_id in self.created,
        )

    def new_incident(self, intent: NewIncident) -> tuple[db.Incident, str]:
        workflow = self.settings.workflow_of(intent.service)
        incident = db.Incident(
            service=intent.service,
            status=workflow.initial,
            priority=self.settings.services[intent.service].default_priority.value,
            title=intent.title[:500],
            reporter=self.actor.email,
            reporter_name=intent.reporter_name[:200],
            follow_up_of=intent.follow_up_of,
            created_at=self.now,
            updated_at=self.now,
        )
        detail: dict[str, object] = {
            "title": incident.title,
            "service": incident.service,
            "priority": incident.priority,  # the SLA clocks start with it
            "text": intent.text,
        }
        hint = mail_language(self.mail.headers) if self.mail is not None else None
        if hint and self.settings.locale.mail_language:
            detail["language"] = hint  # the reporter's notices use it if nothing else says
        if intent.follow_up_of is not None:
            detail["follow_up_of"] = intent.follow_up_of
        opening = [(EventKind.CREATED, detail), *self._warning()]
        if self.throttle is not None:
            opening.append((EventKind.RATE_LIMITED, self.throttle.detail))
        if not intent.commands and self.sla is not None:  # the opening events alone set the
            records = [self._record(kind, said) for kind, said in opening]  # clocks: one INSERT
            self.sla.refresh(self.session, incident, self.now, new=True, records=records)
        insert_incident(self.session, incident)
        self.stored[incident.id] = _fields(incident)
        self.created.add(incident.id)
        self.records[incident.id] = []
        self.watchers[incident.id] = frozenset()
        self.problems[incident.id] = frozenset()
        if intent.follow_up_of is not None:
            self._event(intent.follow_up_of, EventKind.FOLLOW_UP, {"incident": incident.id})
        for kind, said in opening:
            self._event(incident.id, kind, said)
        summary = f"created INC-{incident.id} in {incident.service}"
        if self.throttle is not None:
            summary += f" (not acknowledged: {self.throttle.reason})"
        decision = None
        if intent.commands:
            decision = self.decide(view_of(self.session, incident), intent.commands)
            self.commit_decision(incident, decision)
            summary += _command_summary(decision)
            self.keep_sla(incident)
        self.notify(incident, created=True, commands=intent.commands, decision=decision)
        return incident, summary

    def reply(self, intent: Reply, incident: db.Incident, view: IncidentView) -> str:
        self.warn(incident.id)
        if not intent.accepted:  # kept for the desk's people, relayed to nobody (vocabulary)
            detail: dict[str, object] = {"text": intent.text, "reason": intent.reason}
            self._event(incident.id, EventKind.NOTE, detail)
            summary = f"reply to INC-{incident.id} kept as an internal note: {intent.reason}"
        elif intent.text and intent.note:
            self._event(incident.id, EventKind.NOTE, {"text": intent.text})
            summary = f"internal note on INC-{incident.id}"
        elif intent.text:
            self._event(incident.id, EventKind.COMMENT, {"text": intent.text})
            summary = f"comment on INC-{incident.id}"
        else:
            summary = f"reply to INC-{incident.id}"
        if intent.reopen:
            decision = reopen_by_reply(view, self.settings)
            self.commit_decision(incident, decision)
            view = decision.view
            if decision.events:
                summary += ", reopened"
        if intent.resume:
            before = status_before(self.history(incident.id), view.status)
            decision = resume_by_reply(view, self.settings, before)
            self.commit_decision(incident, decision)
            view = decision.view
            if decision.events:
                summary += f", resumed ({view.status})"
        commanded = None
        if intent.commands:
            commanded = self.decided = self.decide(view, intent.commands)
            self.commit_decision(incident, commanded)
            summary += _command_summary(commanded)
        incident.updated_at = self.now
        self.keep_sla(incident)
        self.notify(
            incident, commands=intent.commands, decision=commanded, accepted=intent.accepted
        )
        return summary

    def decide(self, view: IncidentView, commands: tuple[Command | BadCommand, ...]) -> Decision:
        """The workflow's decision on the commands, with what they name looked up."""
        problems = _problems(self.session, commands)
        incidents = _named_incidents(self.session, commands, self.settings)
        return decide(view, commands, self.actor, self.settings, problems, incidents)

    def commit_decision(self, incident: db.Incident, decision: Decision) -> None:
        after = decision.view
        closed_before = incident.closed_at is not None
        was = _kind(self.settings, incident.service, incident.status)
        closes = self.settings.workflow_of(after.service).status(after.status).kind
        incident.service, incident.status = after.service, after.status
        incident.priority, incident.assignee = after.priority.value, after.assignee
        incident.impact, incident.urgency = after.impact, after.urgency
        if closes is StatusKind.CLOSED and not closed_before:
            incident.closed_at = self.now
        elif closes is not StatusKind.CLOSED:
            incident.closed_at = None
        if closes is StatusKind.OPEN and was is not StatusKind.OPEN:
            incident.merged_into = None  # reopened: no longer a duplicate, its mail is its own
        for problem in sorted(after.problems - self.known(incident.id).problems):
            self.add(db.IncidentProblem, incident_id=incident.id, problem_id=problem, at=self.now)
        self.problems[incident.id] = after.problems
        for happening in decision.events:
            self._event(incident.id, happening.kind, dict(happening.detail))
            self._follow(incident, happening)
        incident.updated_at = self.now

    def _follow(self, incident: db.Incident, happening: Happening) -> None:
        """What an event does beyond the incident's own row: watchers, a merge."""
        detail = happening.detail
        if happening.kind is EventKind.WATCHER_ADDED:
            self.add(db.Participant, incident_id=incident.id, email=detail["email"])
            self.watchers[incident.id] = self.known(incident.id).watchers | {detail["email"]}
        elif happening.kind is EventKind.WATCHER_REMOVED:
            self.dropped.add(detail["email"])  # not added back by this very mail's Cc
            self.rows.discard(db.Participant, incident_id=incident.id, email=detail["email"])
            self.session.execute(
                delete(db.Participant).where(
                    db.Participant.incident_id == incident.id,
                    db.Participant.email == detail["email"],
                )
            )
            self.watchers[incident.id] = self.known(incident.id).watchers - {detail["email"]}
        elif happening.kind is EventKind.MERGED_INTO:
            self._fold(incident, int(detail["incident"]))

    def _fold(self, duplicate: db.Incident, number: int) -> None:
        """Merge `duplicate` into incident `number`: the target's history gets a copy of the
        duplicate's texts (notes included: the event is internal), its watchers and reporter
        become the target's watchers, and mail about the duplicate goes to the target from
        now on (`merged_into`, followed when a reply is threaded). Its files are listed with
        the target's (mailproc.store.queries.attachments_of)."""
        target = lock_incident(self.session, number)
        assert target is not None, f"INC-{number} vanished while merging into it"
        duplicate.merged_into = target.id
        texts = [
            {"at": r.at.isoformat(), "actor": r.actor, "kind": r.kind, "text": r.detail["text"]}
            for r in self.history(duplicate.id)
            if r.kind in _TEXTS and r.detail.get("text")
        ]
        detail = {
            "incident": duplicate.id,
            "title": duplicate.title,
            "reporter": duplicate.reporter,
            "texts": texts,
        }
        self._event(target.id, EventKind.MERGED, detail)
        known = self.known(target.id).watchers
        joining = {duplicate.reporter} | self.known(duplicate.id).watchers
        fresh = {a for a in joining - known if a != target.reporter and not self.settings.is_own(a)}
        for email in sorted(fresh):
            self.add(db.Participant, incident_id=target.id, email=email)
        self.watchers[target.id] = known | fresh
        target.updated_at = self.now
        save_incident(self.session, target)
        self.notify(target)

    def keep_sla(self, incident: db.Incident) -> None:
        """Recompute the incident's stored due times if this mail recorded anything that can
        move them (mailproc.sla.state), in this transaction."""
        kinds = {h.kind for number, h in self.happened if number == incident.id}
        if self.sla is not None and kinds - _NO_SLA_EFFECT:
            new = EventKind.CREATED in kinds
            escalated = self.escalated.get(incident.id)
            sent = escalated.sent if escalated is not None else None
            records = self.history(incident.id)
            self.sla.refresh(self.session, incident, self.now, new, records, sent)

    def knowing(self, incident_id: int, read: Read) -> None:
        """What the caller read of the incident (`read_incident`), not to be read again."""
        self.watchers[incident_id], self.problems[incident_id] = read.watchers, read.problems
        self.escalated[incident_id], self.records[incident_id] = read.escalated, read.history

    def save(self, incident: db.Incident) -> None:
        """Write the incident's row back, unless it is as this transaction wrote it."""
        if self.stored.get(incident.id) != _fields(incident):
            save_incident(self.session, incident)

    def notify(
        self,
        incident: db.Incident,
        *,
        created: bool = False,
        commands: tuple[Command | BadCommand, ...] = (),
        decision: Decision | None = None,
        accepted: bool = True,
    ) -> None:
        """Queue the notices of everything this mail did to the incident, in this transaction."""
        if self.outbox is None:
            return
        name = self.mail.sender.name if self.mail and self.mail.sender else ""
        change = Change(
            incident=incident,
            actor=Person(self.actor.email, name or self.actor.person or ""),
            now=self.now,
            happenings=tuple(h for number, h in self.happened if number == incident.id),
            mail=self.mail,
            created=created,
            commands=commands,
            decision=decision,
            sender_accepted=accepted,
            unproven=self.actor.unproven,
            unanswered=self.unanswered or (self.throttle.reason if self.throttle else None),
            known=self.known(incident.id),
            rows=self.rows,
            files=self.files(incident.id),
        )
        self.outbox.after_change(self.session, change)

    def _record(self, kind: EventKind, detail: dict[str, object]) -> Record:
        return Record(self.now, self.actor.email, kind.value, detail, self.message)

    def _event(self, incident_id: int, kind: EventKind, detail: dict[str, object]) -> None:
        self.happened.append((incident_id, Happening(kind, detail)))
        records = self.history(incident_id)  # read before the new row is written
        records.append(self._record(kind, detail))
        self.add(
            db.Event,
            incident_id=incident_id,
            at=self.now,
            actor=self.actor.email,
            kind=kind.value,
            detail=detail,
            message_pk=self.message,
        )
        if kind in _TEXTS:  # searchable (mailproc.store.search)
            said = f"{detail.get('title', '')} {detail.get('text', '')}".strip()
            self.rows.add_words(incident_id, kind.value, self.actor.email, self.now, said)

    def remember(self, incident_id: int, watchers: bool) -> None:
        """Record the mail's Message-ID for threading, and the ids it answers (a parent that
        arrives after it then joins the incident); when it was applied (`watchers`), its To/Cc
        people as participants, within `[watchers]`; the rest are named in the history. A mail
        that was not applied adds nobody: strangers cannot join a thread."""
        assert self.mail is not None
        mail = self.mail
        for message_id in (mail.message_id, *parents(mail)):  # existing ones stay
            if message_id:
                self.add(db.ThreadRef, message_id=message_id, incident_id=incident_id)
        if not watchers:
            return
        own = self.settings.is_own  # support+INC-4.<token>@… too
        addresses = {a.email for a in (*mail.to, *mail.cc) if a.email and not own(a.email)}
        addresses -= self.dropped
        known = self.known(incident_id).watchers
        fresh, refused = self.settings.watchers.admit(sorted(addresses - known))
        for email in fresh:
            self.add(db.Participant, incident_id=incident_id, email=email)
        self.watchers[incident_id] = known | set(fresh)
        for reason, emails in refused.items():
            detail: dict[str, object] = {"addresses": emails[:50], "reason": reason}
            self._event(incident_id, EventKind.WATCHERS_NOT_ADDED, detail)

    def warn(self, incident_id: int) -> None:
        """A sender that looks like someone else: in the history, and in the desk's notices."""
        for kind, detail in self._warning():
            self._event(incident_id, kind, detail)

    def _warning(self) -> list[tuple[EventKind, dict[str, object]]]:
        if self.mail is None or self.mail.sender_warning is None:
            return []
        return [(EventKind.SENDER_WARNING, {"warning": self.mail.sender_warning})]

    def attachments(self, mail: InboundMail) -> None:
        """Stored under names mailproc chose; the sender's name is only a label. The bytes
        go into blobs under their SHA-256, once whatever the number of mails carrying them."""
        for position, part in enumerate(mail.attachments):
            extension = mimetypes.guess_extension(part.content_type) or ".bin"
            digest = hashlib.sha256(part.content).hexdigest()
            self.add(db.Blob, sha256=digest, size=part.size, content=part.content)
            self.add(
                db.Attachment,
                message_pk=self.message,
                position=position,
                filename=part.filename[:255],
                stored_name=f"m{self.message}-a{position}{extension}",
                content_type=part.content_type[:255],
                size=part.size,
                sha256=digest,
            )
            self.enclosures.append(
                Enclosure(digest, part.filename[:255], part.content_type[:255], part.size)
            )

    def files(self, incident_id: int) -> Files:
        """This mail's attachments for the notices about it, numbered within the incident."""
        if not self.enclosures:
            return NO_FILES
        new = incident_id in self.created
        before = 0 if new else attachment_count(self.session, incident_id)
        items = tuple(MailFile(before + n, e) for n, e in enumerate(self.enclosures, start=1))
        kinds = {h.kind for number, h in self.happened if number == incident_id}
        return Files(items, self.actor.email, EventKind.NOTE in kinds)


_NO_SLA_EFFECT = {
    EventKind.REPLY_NOT_APPLIED,
    EventKind.WATCHERS_NOT_ADDED,
    EventKind.SENDER_WARNING,
    EventKind.COMMAND_REJECTED,
    EventKind.FOLLOW_UP,
    EventKind.RATE_LIMITED,
}


def status_before(records: Sequence[Record], status: str) -> str | None:
    """The status the incident was in before it last entered `status`."""
    for record in reversed(records):
        if record.kind == EventKind.STATUS and record.detail.get("to") == status:
            return str(record.detail.get("from"))
    return None


_TEXTS = (EventKind.CREATED, EventKind.COMMENT, EventKind.NOTE)


def _kind(settings: Settings, service: str, status: str) -> StatusKind | None:
    workflow = settings.workflow_of(service)
    return next((s.kind for s in workflow.statuses if s.name == status), None)


def _named_incidents(
    session: Session, commands: Iterable[object], settings: Settings
) -> dict[int, Brief]:
    """The incidents [MERGE INC-n] names, with the chain each is merged into (at most
    MAX_CHAIN links: a longer one is cut, and a cycle in it shows)."""
    wanted = {
        int(c.arg) for c in commands if isinstance(c, Command) and c.verb is Verb.MERGE and c.arg
    }
    found: dict[int, Brief] = {}
    for number in sorted(wanted):
        row = session.get(db.Incident, number)
        if row is None:
            continue
        kind = _kind(settings, row.service, row.status) or StatusKind.OPEN
        found[number] = Brief(number, row.status, kind, merge_chain(session, row))
    return found


MAX_CHAIN = 20


def merge_chain(session: Session, incident: db.Incident) -> tuple[int, ...]:
    """The incidents `incident` is merged into, nearest first."""
    chain: list[int] = []
    following = incident.merged_into
    while following is not None and following not in chain and len(chain) < MAX_CHAIN:
        chain.append(following)
        following = session.scalar(
            select(db.Incident.merged_into).where(db.Incident.id == following)
        )
    return tuple(chain)


def _command_summary(decision: Decision) -> str:
    if decision.refused:
        return "; refused " + "; ".join(f"{r.command} ({r.reason})" for r in decision.refused)
    return f"; applied {' '.join(decision.applied)}" if decision.applied else ""


def _typed(kind: Any) -> Any:
    return cast(null(), kind)


# What a mail about an existing incident needs of it, in one statement (`read_incident`): one
# row per watcher, related problem, escalation sent and event, and the kind of our notice the
# mail answers, if any. Column by column: tag, order, two numbers, two strings, a moment and
# a JSON value; the first branch gives the types the results are converted with.
_READ = union_all(
    select(
        literal_column("'w'").label("tag"),
        literal_column("0").label("ord"),
        _typed(Integer).label("n1"),
        _typed(Integer).label("n2"),
        db.Participant.email.label("s1"),
        _typed(String).label("s2"),
        _typed(UTCDateTime()).label("at"),
        _typed(JSON()).label("data"),
    ).where(db.Participant.incident_id == bindparam("incident")),
    select(
        literal_column("'p'"),
        literal_column("0"),
        db.IncidentProblem.problem_id,
        null(),
        null(),
        null(),
        null(),
        null(),
    ).where(db.IncidentProblem.incident_id == bindparam("incident")),
    select(
        literal_column("'e'"),
        db.Escalation.id,
        db.Escalation.cycle,
        db.Escalation.level,
        db.Escalation.target,
        null(),
        db.Escalation.at,
        db.Escalation.recipients,
    ).where(db.Escalation.incident_id == bindparam("incident")),
    select(
        literal_column("'h'"),
        db.Event.id,
        db.Event.message_pk,
        null(),
        db.Event.actor,
        db.Event.kind,
        db.Event.at,
        db.Event.detail,
    ).where(db.Event.incident_id == bindparam("incident")),
    select(
        literal_column("'k'"),
        literal_column("0"),
        null(),
        null(),
        db.Outbox.kind,
        null(),
        null(),
        null(),
    ).where(db.Outbox.message_id == bindparam("parent")),
).order_by("tag", "ord")


@dataclass(frozen=True, slots=True)
class Read:
    """An incident as a mail about it finds it (`read_incident`)."""

    watchers: frozenset[str]
    problems: frozenset[int]
    escalated: Escalated
    history: list[Record]
    answered: str | None  # the kind of our notice the mail answers (its parent), if one


def read_incident(session: Session, incident_id: int, parent: str | None) -> Read:
    """Watchers, related problems, escalations sent and history of the incident, and the kind
    of our notice `parent` names: one statement instead of five, in one snapshot (the caller
    holds the incident's row lock, which every writer of these rows takes first)."""
    watchers: set[str] = set()
    problems: set[int] = set()
    sent: list[Sent] = []
    recipients: set[str] = set()
    history: list[Record] = []
    answered = None
    for row in db.run(session, _READ, incident=incident_id, parent=parent):
        if row.tag == "h":
            history.append(Record(row.at, row.s1, row.s2, row.data, row.n1))
        elif row.tag == "w":
            watchers.add(row.s1)
        elif row.tag == "p":
            problems.add(row.n1)
        elif row.tag == "e":
            sent.append(Sent(SlaTarget(row.s1), row.n1, row.n2, row.at))
            recipients.update(row.data)
        else:
            answered = row.s1
    escalated = Escalated(tuple(sent), frozenset(recipients))
    return Read(frozenset(watchers), frozenset(problems), escalated, history, answered)


_RELATED = select(db.IncidentProblem.problem_id).where(
    db.IncidentProblem.incident_id == bindparam("incident")
)
_PARTICIPANTS = select(db.Participant.email).where(
    db.Participant.incident_id == bindparam("incident")
)
_PROBLEMS = select(db.Problem.id).where(db.Problem.id.in_(bindparam("ids", expanding=True)))
_INCIDENT_TABLE = db.Base.metadata.tables[db.Incident.__tablename__]
_INCIDENT_FIELDS = tuple(c.name for c in _INCIDENT_TABLE.columns if c.name != "id")
_LOCK = select(_INCIDENT_TABLE).where(db.Incident.id == bindparam("id")).with_for_update()
_NEW_INCIDENT = Prepared(insert(db.Incident).returning(db.Incident.id), keyed=True)
_SAVE_INCIDENT = Prepared(
    update(db.Incident)
    .where(db.Incident.id == bindparam("pk"))
    .values({name: bindparam(f"new_{name}") for name in _INCIDENT_FIELDS})
)


def lock_incident(session: Session, number: int) -> db.Incident | None:
    """The incident, its row locked until the commit, as an object outside the session: the
    Desk writes it back with one UPDATE (`save_incident`), not through the ORM's flush."""
    row = db.run(session, _LOCK, id=number).first()
    return None if row is None else db.Incident(**row._mapping)


def _fields(incident: db.Incident) -> dict[str, Any]:
    return {name: getattr(incident, name) for name in _INCIDENT_FIELDS}


def insert_incident(session: Session, incident: db.Incident) -> None:
    incident.id = int(_NEW_INCIDENT(session, **_fields(incident)).scalar_one())


def save_incident(session: Session, incident: db.Incident) -> None:
    values = {f"new_{name}": getattr(incident, name) for name in _INCIDENT_FIELDS}
    _SAVE_INCIDENT(session, pk=incident.id, **values)


def view_of(session: Session, incident: db.Incident, read: Read | None = None) -> IncidentView:
    """The incident as the workflow sees it; `read` when the caller has read the rest."""
    if read is None:
        watchers = participants_of(session, incident.id)
        problems = frozenset(_related(session, incident.id))
        escalated = escalations(session, incident.id)
    else:
        watchers, problems, escalated = read.watchers, read.problems, read.escalated
    return IncidentView(
        number=incident.id,
        service=incident.service,
        status=incident.status,
        priority=Priority(incident.priority),
        assignee=incident.assignee,
        reporter=incident.reporter,
        problems=problems,
        closed_at=incident.closed_at,
        impact=incident.impact,
        urgency=incident.urgency,
        escalated_to=escalated.recipients,
        watchers=watchers,
    )


def _related(session: Session, incident_id: int) -> set[int]:
    return set(db.run(session, _RELATED, incident=incident_id).scalars())


def participants_of(session: Session, incident_id: int) -> frozenset[str]:
    return frozenset(db.run(session, _PARTICIPANTS, incident=incident_id).scalars())


def _problems(session: Session, commands: Iterable[object]) -> frozenset[int]:
    wanted = {
        int(c.arg) for c in commands if isinstance(c, Command) and c.verb is Verb.RELATE and c.arg
    }
    if not wanted:
        return frozenset()
    return frozenset(db.run(session, _PROBLEMS, ids=sorted(wanted)).scalars())
