"""Apply one incoming mail to the database in one transaction, exactly once.

The only place that opens a write transaction for mail. The message's key is claimed first,
so a second delivery of the same mail is a no-op; a bug rolls everything back and the mail is
kept in quarantine with the error, so one poison message never blocks the ones behind it.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from mailproc import db
from mailproc.config import Settings
from mailproc.intents import NewIncident, Reply, actor_of, classify
from mailproc.mail import InboundMail, MailError, parse_mail
from mailproc.msgid import read_message_id
from mailproc.notices import Person
from mailproc.outbox import Change, Known, Outbox
from mailproc.slastore import SlaBook, escalated_to, history
from mailproc.subject import BadCommand, Command, parse_subject
from mailproc.timeline import Record
from mailproc.vocabulary import EventKind, Priority, StatusKind, Verb
from mailproc.workflow import (
    Actor,
    Decision,
    Happening,
    IncidentView,
    close_by_timeout,
    decide,
    reopen_by_reply,
)

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Transaction = Callable[[], AbstractContextManager[Session]]
SYSTEM_ACTOR = "mailproc"


def utcnow() -> datetime:
    return datetime.now(UTC)


class StoreUnavailable(Exception):
    """The database is down or locked: a reason to retry later, never to quarantine."""


class Disposition(StrEnum):
    PROCESSED = "processed"
    DUPLICATE = "duplicate"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a mail came from, and the service its mailbox or folder is mapped to, if any."""

    source: str = "cli"
    service: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    disposition: Disposition
    key: str
    incident: int | None = None
    summary: str = ""
    quarantined: bool = False  # settle into the quarantine folder (also for a duplicate of one)
    sender: str = ""


class Desk:
    """The service layer: mail in, rows out."""

    def __init__(self, settings: Settings, engine: Engine, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock

    def handle(self, raw: bytes, origin: Origin = Origin()) -> Outcome:
        """Apply one mail. Raises StoreUnavailable only when the database cannot be reached:
        then the mail must stay where it is, to be tried again, not be quarantined."""
        return self._guarded(raw, origin, self._transaction)

    @contextmanager
    def dry_run(self) -> Iterator[Callable[[bytes, Origin], Outcome]]:
        """Shadow mode: a `handle` whose every write is rolled back when the block ends.

        All mails share one outer transaction, each inside its own SAVEPOINT, so a reply
        threads onto an incident opened earlier in the same run and a failing mail undoes only
        itself. The price is locking: until the block ends the transaction holds SQLite's write
        lock (BEGIN IMMEDIATE) or, on PostgreSQL, the claimed keys and locked incident rows, so
        a daemon writing to the same database waits meanwhile (and backs off if it waits long).
        Incident numbers shown are those the run drew; PostgreSQL does not hand them back.
        """
        with Session(self.engine) as session:
            session.begin()

            @contextmanager
            def savepoint() -> Iterator[Session]:
                with session.begin_nested():
                    yield session

            def handle(raw: bytes, origin: Origin = Origin()) -> Outcome:
                before = session.scalar(select(func.max(db.Outbox.id))) or 0
                outcome = self._guarded(raw, origin, savepoint)
                return _with_notices(session, outcome, before)

            try:
                yield handle
            finally:
                session.rollback()

    @contextmanager
    def _transaction(self) -> Iterator[Session]:
        with Session(self.engine) as session, session.begin():
            yield session

    def _guarded(self, raw: bytes, origin: Origin, transaction: Transaction) -> Outcome:
        try:
            return self._handle(raw, origin, transaction)
        except (OperationalError, InterfaceError) as exc:
            raise StoreUnavailable(str(exc.orig) if exc.orig else str(exc)) from exc

    def _handle(self, raw: bytes, origin: Origin, transaction: Transaction) -> Outcome:
        now = self.clock()
        try:
            mail = parse_mail(raw)
        except MailError as exc:
            return self._quarantine(raw, origin, f"unparseable: {exc}", now, None, transaction)
        try:
            with transaction() as session:
                return self._apply(session, mail, origin, now)
        except IntegrityError:
            with transaction() as session:
                prior = _prior(session, mail.key)
            if prior is not None:  # another process claimed the key first
                return prior
            log.exception("integrity error on %s", mail.key)
            reason = "internal error: integrity error"
            return self._quarantine(raw, origin, reason, now, mail, transaction)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            log.exception("internal error on %s", mail.key)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            return self._quarantine(raw, origin, reason, now, mail, transaction)

    def _quarantine(
        self,
        raw: bytes,
        origin: Origin,
        reason: str,
        now: datetime,
        mail: InboundMail | None,
        transaction: Transaction,
    ) -> Outcome:
        """Keep a mail that cannot be applied, with the reason, so nothing is lost."""
        digest = hashlib.sha256(raw).hexdigest()
        key = mail.key if mail else f"sha256:{digest}"
        sender = mail.sender.email if mail and mail.sender else ""
        with transaction() as session:
            prior = _prior(session, key)
            if prior is not None:
                return prior
            session.add(
                db.Message(
                    key=key,
                    message_id=mail.message_id if mail else None,
                    content_hash=digest,
                    sender=sender,
                    subject=mail.subject if mail else "",
                    source=origin.source,
                    outcome=Disposition.QUARANTINED.value,
                    reason=reason,
                    received_at=now,
                    raw=raw,
                )
            )
        return Outcome(Disposition.QUARANTINED, key, None, reason, True, sender)

    def close_timed_out(self) -> list[int]:
        """Close incidents left in a status with `auto_close_days` (e.g. Resolved, awaiting the
        reporter) for longer than that without any change. One transaction per incident, rows
        claimed with SKIP LOCKED, so several daemons share the work without doing it twice."""
        now = self.clock()
        closed = []
        for service, status, days in _timed_statuses(self.settings):
            cutoff = now - timedelta(days=days)
            while (number := self._close_one(service, status, cutoff, now)) is not None:
                closed.append(number)
        return closed

    def _close_one(self, service: str, status: str, cutoff: datetime, now: datetime) -> int | None:
        with Session(self.engine) as session, session.begin():
            incident = session.scalar(
                select(db.Incident)
                .where(
                    db.Incident.service == service,
                    db.Incident.status == status,
                    db.Incident.updated_at <= cutoff,
                )
                .order_by(db.Incident.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if incident is None:
                return None
            decision = close_by_timeout(_view(session, incident), self.settings)
            if not decision.events:
                return None
            apply = _Apply(
                self.settings, session, None, Actor(SYSTEM_ACTOR), now, None, self.outbox, self.sla
            )
            apply._commit_decision(incident, decision)
            apply.keep_sla(incident)
            apply.notify(incident)
            return incident.id

    @cached_property
    def outbox(self) -> Outbox:
        """The notification writer, one per Desk so compiled templates serve many mails."""
        return Outbox(self.settings)

    @cached_property
    def sla(self) -> SlaBook:
        """The SLA policy, built once: its calendars remember the days they have worked out."""
        return SlaBook(self.settings)

    def _apply(self, session: Session, mail: InboundMail, origin: Origin, now: datetime) -> Outcome:
        prior = _prior(session, mail.key)
        if prior is not None:
            return prior
        message = _message_row(mail, origin, now)
        session.add(message)
        session.flush()  # claims the key: a concurrent twin now waits, then fails
        session.add_all(_attachment_rows(mail, message.id))
        subject = parse_subject(mail.subject, self.settings.language)
        found, known_id = _thread(session, mail, subject.incident, self.settings)
        view = _view(session, found) if found else None
        participants = _participants(session, found.id) if found else frozenset()
        intent = classify(mail, subject, view, participants, self.settings, now, origin.service)
        actor = actor_of(mail, self.settings)
        apply = _Apply(self.settings, session, message, actor, now, mail, self.outbox, self.sla)
        if found is not None and view is not None:
            apply.watchers[found.id], apply.problems[found.id] = participants, view.problems
        if isinstance(intent, NewIncident):
            incident, summary = apply.new_incident(intent)
        else:
            assert found is not None and view is not None
            incident, summary = found, apply.reply(intent, found, view)
        message.incident_id = incident.id
        message.outcome = Disposition.PROCESSED.value
        apply.remember(incident.id, known_id)
        return Outcome(
            Disposition.PROCESSED, mail.key, incident.id, summary, sender=apply.actor.email
        )


@dataclass
class _Apply:
    """The writes of one mail, sharing the session, the message row and the clock."""

    settings: Settings
    session: Session
    message: db.Message | None
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
    created: set[int] = field(default_factory=set)

    def history(self, incident_id: int) -> list[Record]:
        if incident_id not in self.records:
            self.records[incident_id] = history(self.session, incident_id)
        return self.records[incident_id]

    def known(self, incident_id: int) -> Known:
        if incident_id not in self.watchers:
            self.watchers[incident_id] = _participants(self.session, incident_id)
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
        self.session.add(incident)
        self.session.flush()
        self.created.add(incident.id)
        self.records[incident.id] = []
        self.watchers[incident.id] = frozenset()
        self.problems[incident.id] = frozenset()
        detail: dict[str, object] = {
            "title": incident.title,
            "service": incident.service,
            "priority": incident.priority,  # the SLA clocks start with it
            "text": intent.text,
        }
        if intent.follow_up_of is not None:
            detail["follow_up_of"] = intent.follow_up_of
            self._event(intent.follow_up_of, EventKind.FOLLOW_UP, {"incident": incident.id})
        self._event(incident.id, EventKind.CREATED, detail)
        summary = f"created INC-{incident.id} in {incident.service}"
        decision = None
        if intent.commands:
            decision = decide(
                _view(self.session, incident),
                intent.commands,
                self.actor,
                self.settings,
                _problems(self.session, intent.commands),
            )
            self._commit_decision(incident, decision)
            summary += _command_summary(decision)
        self.keep_sla(incident)
        self.notify(incident, created=True, commands=intent.commands, decision=decision)
        return incident, summary

    def reply(self, intent: Reply, incident: db.Incident, view: IncidentView) -> str:
        if not intent.accepted:
            self._event(incident.id, EventKind.REPLY_NOT_APPLIED, {"reason": intent.reason})
            summary = f"reply to INC-{incident.id} not applied: {intent.reason}"
        elif intent.text:
            self._event(incident.id, EventKind.COMMENT, {"text": intent.text})
            summary = f"comment on INC-{incident.id}"
        else:
            summary = f"reply to INC-{incident.id}"
        if intent.reopen:
            decision = reopen_by_reply(view, self.settings)
            self._commit_decision(incident, decision)
            view = decision.view
            if decision.events:
                summary += ", reopened"
        commanded = None
        if intent.commands:
            problems = _problems(self.session, intent.commands)
            commanded = decide(view, intent.commands, self.actor, self.settings, problems)
            self._commit_decision(incident, commanded)
            summary += _command_summary(commanded)
        incident.updated_at = self.now
        self.keep_sla(incident)
        self.notify(
            incident, commands=intent.commands, decision=commanded, accepted=intent.accepted
        )
        return summary

    def _commit_decision(self, incident: db.Incident, decision: Decision) -> None:
        after = decision.view
        closed_before = incident.closed_at is not None
        closes = self.settings.workflow_of(after.service).status(after.status).kind
        incident.service, incident.status = after.service, after.status
        incident.priority, incident.assignee = after.priority.value, after.assignee
        incident.impact, incident.urgency = after.impact, after.urgency
        if closes is StatusKind.CLOSED and not closed_before:
            incident.closed_at = self.now
        elif closes is not StatusKind.CLOSED:
            incident.closed_at = None
        for problem in sorted(after.problems - self.known(incident.id).problems):
            self.session.add(
                db.IncidentProblem(incident_id=incident.id, problem_id=problem, at=self.now)
            )
        self.problems[incident.id] = after.problems
        for happening in decision.events:
            self._event(incident.id, happening.kind, dict(happening.detail))
        incident.updated_at = self.now

    def keep_sla(self, incident: db.Incident) -> None:
        """Recompute the incident's stored due times if this mail recorded anything that can
        move them (mailproc.slastore), in this transaction."""
        kinds = {h.kind for number, h in self.happened if number == incident.id}
        if self.sla is not None and kinds - _NO_SLA_EFFECT:
            new = EventKind.CREATED in kinds
            self.sla.refresh(self.session, incident, self.now, new, self.history(incident.id))

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
            known=self.known(incident.id),
        )
        self.outbox.after_change(self.session, change)

    def _event(self, incident_id: int, kind: EventKind, detail: dict[str, object]) -> None:
        self.happened.append((incident_id, Happening(kind, detail)))
        message_pk = self.message.id if self.message else None
        records = self.history(incident_id)  # read before the new row joins the session
        records.append(Record(self.now, self.actor.email, kind.value, detail, message_pk))
        self.session.add(
            db.Event(
                incident_id=incident_id,
                at=self.now,
                actor=self.actor.email,
                kind=kind.value,
                detail=detail,
                message_pk=message_pk,
            )
        )

    def remember(self, incident_id: int, known_id: bool) -> None:
        """Record the mail's Message-ID for threading (unless `known_id`: it already is) and
        its To/Cc people as participants."""
        assert self.mail is not None
        mail = self.mail
        if mail.message_id and not known_id:
            self.session.add(db.ThreadRef(message_id=mail.message_id, incident_id=incident_id))
        addresses = {a.email for a in (*mail.to, *mail.cc) if a.email}
        known = self.known(incident_id).watchers
        fresh = addresses - known - self.settings.own_addresses
        for email in sorted(fresh):
            self.session.add(db.Participant(incident_id=incident_id, email=email))
        self.watchers[incident_id] = known | fresh


def _with_notices(session: Session, outcome: Outcome, after_id: int) -> Outcome:
    """A dry run's outcome, telling the notifications its mail queued (and will not send)."""
    rows = session.execute(
        select(db.Outbox.kind, db.Outbox.recipient)
        .where(db.Outbox.id > after_id)
        .order_by(db.Outbox.id)
    ).all()
    if not rows:
        return outcome
    notices = ", ".join(f"{row.kind} to {row.recipient}" for row in rows)
    return replace(outcome, summary=f"{outcome.summary}; notify {notices}")


def _prior(session: Session, key: str) -> Outcome | None:
    """The outcome of an earlier delivery of this mail, told as a duplicate of it."""
    row = session.execute(
        select(db.Message.outcome, db.Message.incident_id, db.Message.sender).where(
            db.Message.key == key
        )
    ).first()
    if row is None:
        return None
    quarantined = row.outcome == Disposition.QUARANTINED.value
    summary = f"already {row.outcome}"
    return Outcome(Disposition.DUPLICATE, key, row.incident_id, summary, quarantined, row.sender)


_NO_SLA_EFFECT = {EventKind.REPLY_NOT_APPLIED, EventKind.COMMAND_REJECTED, EventKind.FOLLOW_UP}


def _timed_statuses(settings: Settings) -> list[tuple[str, str, float]]:
    return [
        (service, status.name, status.auto_close_days)
        for service, config in sorted(settings.services.items())
        for status in settings.workflows[config.workflow].statuses
        if status.auto_close_days is not None
    ]


def _command_summary(decision: Decision) -> str:
    if decision.refused:
        return "; refused " + "; ".join(f"{r.command} ({r.reason})" for r in decision.refused)
    return f"; applied {' '.join(decision.applied)}" if decision.applied else ""


def _message_row(mail: InboundMail, origin: Origin, now: datetime) -> db.Message:
    return db.Message(
        key=mail.key,
        message_id=mail.message_id,
        content_hash=mail.content_hash,
        sender=mail.sender.email if mail.sender else "",
        subject=mail.subject,
        source=origin.source,
        outcome="pending",
        received_at=now,
        raw=mail.raw,
    )


def _attachment_rows(mail: InboundMail, message_pk: int) -> list[db.Attachment]:
    """Attachments are stored under names mailproc chose; the sender's name is only a label."""
    rows = []
    for position, part in enumerate(mail.attachments):
        extension = mimetypes.guess_extension(part.content_type) or ".bin"
        rows.append(
            db.Attachment(
                message_pk=message_pk,
                position=position,
                filename=part.filename[:255],
                stored_name=f"m{message_pk}-a{position}{extension}",
                content_type=part.content_type[:255],
                size=part.size,
                content=part.content,
            )
        )
    return rows


def _thread(
    session: Session, mail: InboundMail, tagged: int | None, settings: Settings
) -> tuple[db.Incident | None, bool]:
    """Headers first (the most specific evidence), then the subject tag; never the title.
    Also tells whether the mail's own Message-ID is already recorded (one query for both)."""
    refs = [*reversed(mail.in_reply_to), *reversed(mail.references)]
    wanted = {*refs, mail.message_id} if mail.message_id else set(refs)
    known: dict[str, int] = {}
    if wanted:
        rows = session.execute(
            select(db.ThreadRef.message_id, db.ThreadRef.incident_id).where(
                db.ThreadRef.message_id.in_(wanted)
            )
        ).all()
        known = {row.message_id: row.incident_id for row in rows}
    own = mail.message_id in known
    for ref in refs:
        if ref in known:
            return _locked(session, known[ref]), own
    signed = _signed_reference(refs, mail, settings) if refs else None
    found = _locked(session, signed) if signed is not None else None
    if found is None and tagged is not None:
        found = _locked(session, tagged)
    return found, own


def _signed_reference(refs: list[str], mail: InboundMail, settings: Settings) -> int | None:
    """A reference to a mail of ours that is not in thread_refs: a valid signature proves we
    sent it; a forged one (someone pushing text into another incident) is logged, not used."""
    for ref in refs:
        signed = read_message_id(settings.signing_key, ref)
        if signed is None:
            continue
        if signed.valid:
            return signed.incident
        log.warning(
            "%s: reference <%s> claims INC-%d but its signature is not ours; not threaded",
            mail.key,
            ref,
            signed.incident,
        )
    return None


def _locked(session: Session, number: int) -> db.Incident | None:
    return session.scalar(select(db.Incident).where(db.Incident.id == number).with_for_update())


def _view(session: Session, incident: db.Incident) -> IncidentView:
    return IncidentView(
        number=incident.id,
        service=incident.service,
        status=incident.status,
        priority=Priority(incident.priority),
        assignee=incident.assignee,
        reporter=incident.reporter,
        problems=frozenset(_related(session, incident.id)),
        closed_at=incident.closed_at,
        impact=incident.impact,
        urgency=incident.urgency,
        escalated_to=escalated_to(session, incident.id),
    )


def _related(session: Session, incident_id: int) -> set[int]:
    return set(
        session.scalars(
            select(db.IncidentProblem.problem_id).where(
                db.IncidentProblem.incident_id == incident_id
            )
        )
    )


def _participants(session: Session, incident_id: int) -> frozenset[str]:
    return frozenset(
        session.scalars(
            select(db.Participant.email).where(db.Participant.incident_id == incident_id)
        )
    )


def _problems(session: Session, commands: Iterable[object]) -> frozenset[int]:
    wanted = {
        int(c.arg) for c in commands if isinstance(c, Command) and c.verb is Verb.RELATE and c.arg
    }
    if not wanted:
        return frozenset()
    return frozenset(session.scalars(select(db.Problem.id).where(db.Problem.id.in_(wanted))))
