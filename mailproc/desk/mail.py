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
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property, partial
from typing import Any, Protocol

from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.desk import waiting
from mailproc.inbound.fingerprint import fingerprint
from mailproc.inbound.parse import InboundMail, MailError, parse_head, parse_mail
from mailproc.inbound.subject import BadCommand, Command, parse_subject
from mailproc.notify.outbox import Change, Known, Outbox
from mailproc.notify.recipients import Person
from mailproc.safety import kept_mail
from mailproc.safety.limits import Throttle, sender_throttle
from mailproc.signing import read_message_id
from mailproc.sla.state import SlaBook, escalated_to, history
from mailproc.sla.timeline import Record
from mailproc.store import db, message_keys
from mailproc.store.prepared import Prepared
from mailproc.vocabulary import TEAM_NOTICES, EventKind, Priority, StatusKind, Verb
from mailproc.workflow.decision import (
    Actor,
    Decision,
    Happening,
    IncidentView,
    close_by_timeout,
    decide,
    reopen_by_reply,
)
from mailproc.workflow.intents import NewIncident, Reply, classify, verified_actor

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Transaction = Callable[[], AbstractContextManager[Session]]
Parsed = (
    InboundMail | MailError | None
)  # parsed ahead (mailproc.sources.parse_ahead); None: not yet


class Handle(Protocol):
    """Apply one mail; `parsed`, when given, is parse_mail's result for exactly these bytes."""

    def __call__(self, raw: bytes, origin: Origin, parsed: Parsed = None) -> Outcome: ...


Batcher = Callable[[], AbstractContextManager[Handle]]  # a group of mails, one transaction
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
    automatic: bool = False  # a robot's mail, kept unanswered: settle where automatic mail goes
    stored: bool = True  # False only when even quarantining failed: keep the mail at the source


class Desk:
    """The service layer: mail in, rows out."""

    def __init__(self, settings: Settings, engine: Engine, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock

    def handle(self, raw: bytes, origin: Origin = Origin()) -> Outcome:
        """Apply one mail in its own transaction. Raises StoreUnavailable only when the
        database cannot be reached: then the mail must stay where it is, to be tried again, not
        be quarantined."""
        with self.batch() as handle:
            return handle(raw, origin)

    @contextmanager
    def batch(self) -> Iterator[Handle]:
        """Group commit: the mails handled in the block share one transaction, each inside
        its own SAVEPOINT, so a failing mail undoes only itself, and the block's end commits
        them all with one write to disk instead of one per mail.

        An outcome is final only once the block has ended without an exception: settle the
        mails at their source after that, never inside the block. An exception (a database
        outage raises StoreUnavailable, at any mail or at the commit) rolls the whole group
        back, and every mail of it is to be tried again.
        """
        with _store_errors(), Session(self.engine) as session, session.begin():
            yield partial(self._in_savepoint, session)

    @contextmanager
    def batches(self, dry_run: bool = False) -> Iterator[Batcher]:
        """Group commits (`batch`), or for a dry run groups inside one outer transaction that
        nothing commits, so the caller's loop is the same either way."""
        if dry_run:
            with self.dry_run() as handle:
                yield lambda: nullcontext(handle)
        else:
            yield self.batch

    def _in_savepoint(
        self, session: Session, raw: bytes, origin: Origin, parsed: Parsed = None
    ) -> Outcome:
        @contextmanager
        def savepoint() -> Iterator[Session]:
            with session.begin_nested():
                yield session

        outcome = self._guarded(raw, origin, savepoint, parsed)
        session.expunge_all()  # flushed; a group of mails must not pile up in memory
        return outcome

    @contextmanager
    def dry_run(self) -> Iterator[Handle]:
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

            def handle(raw: bytes, origin: Origin = Origin(), parsed: Parsed = None) -> Outcome:
                before = session.scalar(select(func.max(db.Outbox.id))) or 0
                outcome = self._guarded(raw, origin, savepoint, parsed)
                return _with_notices(session, outcome, before)

            try:
                yield handle
            finally:
                session.rollback()

    def _guarded(
        self, raw: bytes, origin: Origin, transaction: Transaction, parsed: Parsed = None
    ) -> Outcome:
        with _store_errors():
            try:
                return self._handle(raw, origin, transaction, parsed)
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:  # even quarantining failed: a bug, but the mail must not
                log.exception("could not store a mail even in quarantine")  # block the others
                reason = f"not stored: internal error: {type(exc).__name__}: {exc}"[:2000]
                key = f"sha256:{hashlib.sha256(raw).hexdigest()}"
                return Outcome(Disposition.QUARANTINED, key, None, reason, True, stored=False)

    def _handle(
        self, raw: bytes, origin: Origin, transaction: Transaction, parsed: Parsed = None
    ) -> Outcome:
        now = self.clock()
        limit = self.settings.limits.max_message_bytes
        if len(raw) > limit:
            return self._oversized(raw, origin, now, limit, transaction)
        try:
            mail = parse_mail(raw) if parsed is None else _given(parsed)
        except MailError as exc:
            return self._quarantine(raw, origin, f"unparseable: {exc}", now, None, transaction)
        try:
            with transaction() as session:
                return self._apply(session, mail, origin, now)
        except IntegrityError:
            with transaction() as session:
                prior = _claimed(session, mail)
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
        key = f"sha256:{digest}"
        sender = mail.sender.email if mail and mail.sender else ""
        with transaction() as session:
            duplicate = True  # under the hash of its bytes: the same bytes again
            if mail is not None:  # under the key it would have had, reused Message-IDs told
                found = message_keys.claim(session, mail)
                key, duplicate = found.key, found.duplicate
                reason = "; ".join(filter(None, (reason, found.note)))
            prior = _prior(session, key) if duplicate else None
            if prior is not None:
                return prior
            session.add(
                db.Message(
                    key=key,
                    message_id=mail.message_id if mail else None,
                    content_hash=digest,
                    fingerprint=fingerprint(raw),
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

    def _oversized(
        self, raw: bytes, origin: Origin, now: datetime, limit: int, transaction: Transaction
    ) -> Outcome:
        """Not parsed (the parser's time and memory grow with it), but stored whole: the
        database may be the only copy (`ingest -` from an MTA), and nothing is lost."""
        reason = f"too large: {len(raw)} bytes, over limits.max_message_bytes ({limit})"
        try:
            head: InboundMail | None = parse_head(raw)
        except MailError:
            head = None
        return self._quarantine(raw, origin, reason, now, head, transaction)

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
            apply.write()
            return incident.id

    @cached_property
    def outbox(self) -> Outbox:
        """The notification writer, one per Desk so compiled templates serve many mails."""
        return Outbox(self.settings)

    @cached_property
    def sla(self) -> SlaBook:
        """The SLA policy, built once: its calendars remember the days they have worked out."""
        return SlaBook(self.settings)

    def _apply(
        self,
        session: Session,
        mail: InboundMail,
        origin: Origin,
        now: datetime,
        held: waiting.Held | None = None,
    ) -> Outcome:
        """`held`: a mail that waited for its parent (mailproc.desk.waiting), its key claimed."""
        if held is None:
            message, key = _claim_key(session, mail, origin, now)  # a concurrent twin now waits
        else:
            message, key = held.pk, held.key
        if message is None:
            prior = _prior(session, key)
            assert prior is not None, f"{key} claimed but not found"
            return prior
        subject = parse_subject(mail.subject, self.settings.language)
        found = _thread(session, mail, subject.incident, self.settings, key == mail.key)
        automatic = kept_mail.screened(mail, self.settings)
        if automatic is not None:  # kept and recorded, never applied nor answered
            sender = mail.sender.email if mail.sender else ""
            note = message_keys.reuse_note(mail) if key != mail.key else None
            stored = kept_mail.Stored(message, sender, now, note)
            number, summary = kept_mail.keep(session, self.settings, mail, automatic, stored, found)
            return Outcome(
                Disposition.PROCESSED, key, number, summary, sender=sender, automatic=True
            )
        if found is None and held is None and waiting.should_wait(mail, subject, self.settings):
            summary = waiting.hold(session, self.settings, mail, message, now)
            sender = mail.sender.email if mail.sender else ""
            return Outcome(Disposition.PROCESSED, key, None, summary, sender=sender)
        view = _view(session, found) if found else None
        participants = _participants(session, found.id) if found else frozenset()
        team = found is not None and _answers_team_notice(session, mail)
        intent = classify(
            mail, subject, view, participants, self.settings, now, origin.service, team
        )
        actor = verified_actor(mail, self.settings, view, subject.proof)
        apply = _Apply(self.settings, session, message, actor, now, mail, self.outbox, self.sla)
        apply.attachments(mail)
        if found is not None and view is not None:
            apply.watchers[found.id], apply.problems[found.id] = participants, view.problems
        if isinstance(intent, NewIncident):
            apply.throttle = sender_throttle(session, self.settings, actor.email, now)
            incident, summary = apply.new_incident(intent)
        else:
            assert found is not None and view is not None
            incident, summary = found, apply.reply(intent, found, view)
        apply.remember(incident.id)
        apply.write()
        _save_incident(session, incident)
        _SETTLED(session, pk=message, incident=incident.id, outcome=Disposition.PROCESSED.value)
        released = self._release_children(session, mail, now)
        if released:
            summary += f"; {released} waiting repl{'y' if released == 1 else 'ies'} applied"
        return Outcome(Disposition.PROCESSED, key, incident.id, summary, sender=apply.actor.email)

    def _release_children(self, session: Session, mail: InboundMail, now: datetime) -> int:
        """Apply, right after it, the replies that waited for this mail; one that fails stays
        waiting (its wait's end tries it once more, and quarantines it then if need be)."""
        applied = 0
        for child in waiting.children(session, mail.message_id):
            try:
                with session.begin_nested():
                    applied += self._apply_held(session, child, now) is not None
            except (OperationalError, InterfaceError):
                raise
            except Exception:
                log.exception("could not apply %s, which waited for %s", child.key, mail.key)
        return applied

    def _apply_held(self, session: Session, held: waiting.Held, now: datetime) -> Outcome | None:
        """None when another transaction took the waiting mail first."""
        if not waiting.take(session, held.pk):
            return None
        source = self.settings.sources.get(held.source)
        origin = Origin(held.source, source.service if source is not None else None)
        return self._apply(session, parse_mail(held.raw), origin, now, held)

    def release_due(self) -> int:
        """Apply the mails whose wait for their parent is over (they open their own incident),
        one transaction each; returns how many. For a periodic job and the end of `ingest`."""
        count = 0
        while True:
            with _store_errors(), Session(self.engine) as session, session.begin():
                now = self.clock()
                held = waiting.due(session, now)
                if held is None:
                    return count
                try:
                    with session.begin_nested():
                        count += self._apply_held(session, held, now) is not None
                except (OperationalError, InterfaceError):
                    raise
                except Exception as exc:
                    log.exception("could not apply the waiting mail %s", held.key)
                    reason = f"internal error: {type(exc).__name__}: {exc}"
                    waiting.give_up(session, held.pk, reason)
                    count += 1


@dataclass
class _Apply:
    """The writes of one mail, sharing the session, the message row and the clock."""

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
    created: set[int] = field(default_factory=set)
    rows: db.Rows = field(default_factory=db.Rows)  # written when the mail is done
    throttle: Throttle | None = None  # the sender is over the new-incident limit

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
        _insert_incident(self.session, incident)
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
        if self.throttle is not None:
            self._event(incident.id, EventKind.RATE_LIMITED, self.throttle.detail)
            summary += f" (not acknowledged: {self.throttle.reason})"
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
            self.add(db.IncidentProblem, incident_id=incident.id, problem_id=problem, at=self.now)
        self.problems[incident.id] = after.problems
        for happening in decision.events:
            self._event(incident.id, happening.kind, dict(happening.detail))
        incident.updated_at = self.now

    def keep_sla(self, incident: db.Incident) -> None:
        """Recompute the incident's stored due times if this mail recorded anything that can
        move them (mailproc.sla.state), in this transaction."""
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
            unanswered=self.throttle.reason if self.throttle else None,
            known=self.known(incident.id),
            rows=self.rows,
        )
        self.outbox.after_change(self.session, change)

    def _event(self, incident_id: int, kind: EventKind, detail: dict[str, object]) -> None:
        self.happened.append((incident_id, Happening(kind, detail)))
        records = self.history(incident_id)  # read before the new row is written
        records.append(Record(self.now, self.actor.email, kind.value, detail, self.message))
        self.add(
            db.Event,
            incident_id=incident_id,
            at=self.now,
            actor=self.actor.email,
            kind=kind.value,
            detail=detail,
            message_pk=self.message,
        )

    def remember(self, incident_id: int) -> None:
        """Record the mail's Message-ID for threading, and the ids it answers (a parent that
        arrives after it then joins the incident), and its To/Cc people as participants."""
        assert self.mail is not None
        mail = self.mail
        for message_id in (mail.message_id, *waiting.parents(mail)):  # existing ones stay
            if message_id:
                self.add(db.ThreadRef, message_id=message_id, incident_id=incident_id)
        own = self.settings.is_own  # support+INC-4.<token>@… too
        addresses = {a.email for a in (*mail.to, *mail.cc) if a.email and not own(a.email)}
        known = self.known(incident_id).watchers
        fresh = addresses - known
        for email in sorted(fresh):
            self.add(db.Participant, incident_id=incident_id, email=email)
        self.watchers[incident_id] = known | fresh

    def attachments(self, mail: InboundMail) -> None:
        """Stored under names mailproc chose; the sender's name is only a label."""
        for position, part in enumerate(mail.attachments):
            extension = mimetypes.guess_extension(part.content_type) or ".bin"
            self.add(
                db.Attachment,
                message_pk=self.message,
                position=position,
                filename=part.filename[:255],
                stored_name=f"m{self.message}-a{position}{extension}",
                content_type=part.content_type[:255],
                size=part.size,
                content=part.content,
            )


@contextmanager
def _store_errors() -> Iterator[None]:
    """The database being unreachable (or locked for too long) is not the mail's fault."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise StoreUnavailable(str(exc.orig) if exc.orig else str(exc)) from exc


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


_PRIOR = Prepared(
    select(db.Message.outcome, db.Message.incident_id, db.Message.sender).where(
        db.Message.key == bindparam("key")
    )
)
_CLAIM = {
    "sqlite": Prepared(
        sqlite.insert(db.Message).on_conflict_do_nothing().returning(db.Message.id),
        keyed=True,
    ),
    "postgresql": Prepared(
        postgresql.insert(db.Message).on_conflict_do_nothing().returning(db.Message.id),
        keyed=True,
    ),
}
_SETTLED = Prepared(
    update(db.Message)
    .where(db.Message.id == bindparam("pk"))
    .values(incident_id=bindparam("incident"), outcome=bindparam("outcome"))
)
_REFS = select(db.ThreadRef.message_id, db.ThreadRef.incident_id).where(
    db.ThreadRef.message_id.in_(bindparam("ids", expanding=True))
)
_RELATED = select(db.IncidentProblem.problem_id).where(
    db.IncidentProblem.incident_id == bindparam("incident")
)
_PARTICIPANTS = select(db.Participant.email).where(
    db.Participant.incident_id == bindparam("incident")
)
_SENT_KIND = select(db.Outbox.kind).where(db.Outbox.message_id == bindparam("id"))
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


def _prior(session: Session, key: str) -> Outcome | None:
    """The outcome of an earlier delivery of this mail, told as a duplicate of it."""
    row = _PRIOR(session, key=key).first()
    if row is None:
        return None
    quarantined = row.outcome == Disposition.QUARANTINED.value
    summary = f"already {row.outcome}"
    automatic = row.outcome == kept_mail.AUTOMATIC
    return Outcome(
        Disposition.DUPLICATE, key, row.incident_id, summary, quarantined, row.sender, automatic
    )


def _given(parsed: InboundMail | MailError) -> InboundMail:
    if isinstance(parsed, MailError):
        raise parsed
    return parsed


def _claimed(session: Session, mail: InboundMail) -> Outcome | None:
    """The outcome of the delivery that claimed this mail's key first, if one did."""
    found = message_keys.claim(session, mail)
    return _prior(session, found.key) if found.duplicate else None


_NO_SLA_EFFECT = {
    EventKind.REPLY_NOT_APPLIED,
    EventKind.COMMAND_REJECTED,
    EventKind.FOLLOW_UP,
    EventKind.RATE_LIMITED,
}


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


def _claim_key(
    session: Session, mail: InboundMail, origin: Origin, now: datetime
) -> tuple[int | None, str]:
    """The mail's row and the key it is stored under: its own (Message-ID or fingerprint),
    else — when another mail holds that Message-ID (mailproc.store.message_keys) — its content key.
    No row: this mail was applied before under that key."""
    if mail.message_id is None:  # stored before the first hop counted in fingerprints?
        legacy = message_keys.legacy_key(mail)
        if legacy != mail.key and _PRIOR(session, key=legacy).first() is not None:
            return None, legacy
    claimed = _claim(session, mail, origin, now, mail.key, None)
    if claimed is not None or not message_keys.reused(session, mail):
        return claimed, mail.key
    key = message_keys.content_key(mail)
    return _claim(session, mail, origin, now, key, message_keys.reuse_note(mail)), key


def _claim(
    session: Session, mail: InboundMail, origin: Origin, now: datetime, key: str, note: str | None
) -> int | None:
    """Insert the mail's row under the key, whose unique index is the claim; None when the key
    is taken: the mail was applied before (or by a twin that just committed)."""
    inserted = _CLAIM[session.get_bind().dialect.name](
        session,
        key=key,
        message_id=mail.message_id,
        content_hash=mail.content_hash,
        fingerprint=mail.fingerprint,
        sender=mail.sender.email if mail.sender else "",
        subject=mail.subject,
        source=origin.source,
        outcome="pending",
        reason=note,
        received_at=now,
        raw=mail.raw,
    )
    claimed = inserted.scalar()
    return None if claimed is None else int(claimed)


def _thread(
    session: Session, mail: InboundMail, tagged: int | None, settings: Settings, own: bool
) -> db.Incident | None:
    """Headers first (the most specific evidence), then the subject tag; never the title.
    `own`: the mail is stored under its own Message-ID, so an incident whose mail named that
    id (a reply that came first) may claim it (mailproc.desk.waiting)."""
    refs = [*reversed(mail.in_reply_to), *reversed(mail.references)]
    ids = [*refs, mail.message_id] if own and mail.message_id else refs
    if ids:
        rows = db.run(session, _REFS, ids=sorted(set(ids)))
        known = {row.message_id: row.incident_id for row in rows}
        for ref in refs:
            if ref in known:
                return _locked(session, known[ref])
        signed = _signed_reference(refs, mail, settings)
        found = _locked(session, signed) if signed is not None else None
        if found is not None:
            return found
        if mail.message_id in known and tagged is None:
            return _locked(session, known[mail.message_id])
    return _locked(session, tagged) if tagged is not None else None


def _answers_team_notice(session: Session, mail: InboundMail) -> bool:
    """Whether the mail's parent (In-Reply-To, else the last of References) is one of our
    notices written for the desk's own people: a solver's answer to it is internal."""
    parent = (mail.in_reply_to or mail.references or (None,))[-1]
    if parent is None:
        return False
    kind = db.run(session, _SENT_KIND, id=parent).scalar()
    return kind is not None and kind in TEAM_NOTICES


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
    """The incident, its row locked until the commit, as an object outside the session: the
    Desk writes it back with one UPDATE (`_save_incident`), not through the ORM's flush."""
    row = db.run(session, _LOCK, id=number).first()
    return None if row is None else db.Incident(**row._mapping)


def _insert_incident(session: Session, incident: db.Incident) -> None:
    values = {name: getattr(incident, name) for name in _INCIDENT_FIELDS}
    incident.id = int(_NEW_INCIDENT(session, **values).scalar_one())


def _save_incident(session: Session, incident: db.Incident) -> None:
    values = {f"new_{name}": getattr(incident, name) for name in _INCIDENT_FIELDS}
    _SAVE_INCIDENT(session, pk=incident.id, **values)


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
    return set(db.run(session, _RELATED, incident=incident_id).scalars())


def _participants(session: Session, incident_id: int) -> frozenset[str]:
    return frozenset(db.run(session, _PARTICIPANTS, incident=incident_id).scalars())


def _problems(session: Session, commands: Iterable[object]) -> frozenset[int]:
    wanted = {
        int(c.arg) for c in commands if isinstance(c, Command) and c.verb is Verb.RELATE and c.arg
    }
    if not wanted:
        return frozenset()
    return frozenset(db.run(session, _PROBLEMS, ids=sorted(wanted)).scalars())
