"""The transactional outbox: notification mails written as rows inside the change's transaction.

The Desk calls `Outbox.after_change` inside the transaction that applies a mail, so the rows
commit with the change or not at all; a crash can neither lose a notice of a committed change
nor send one of a rolled-back change. Each row holds the finished letter (rendered, addressed,
its Message-ID signed and recorded for threading), so a template edited later cannot change a
queued mail; the sender (mailproc.notify.sender) only composes the MIME bytes, which is the costly
part and has no business on the path that applies incoming mail. A template that fails gives a
row marked failed with the file:line and reason, shown by `incidents show`: a broken template
never stops mail processing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.inbound.parse import InboundMail
from mailproc.inbound.subject import BadCommand, Command
from mailproc.notify.context import (
    IncidentFacts,
    Occasion,
    ProblemFacts,
    build_context,
    reader_for,
)
from mailproc.notify.enclosures import NO_FILES, Files, choose
from mailproc.notify.facts import Known, incident_facts, last_sent, parties_of, thread_root
from mailproc.notify.known_errors import matching_known_errors
from mailproc.notify.letter import (
    AUTO_GENERATED,
    AUTO_REPLIED,
    Enclosure,
    Letter,
    check_addresses,
    letter_to_json,
    tagged_subject,
)
from mailproc.notify.recipients import (
    CommandLine,
    Notice,
    Parties,
    Person,
    change_notices,
    direct_notices,
    resolve,
    transcript,
    wants_transcript,
)
from mailproc.notify.templates import Rendered, TemplateProblem, Templates, folder_of
from mailproc.safety import limits, undeliverable
from mailproc.signing import make_message_id, nonce, reply_address, subject_token
from mailproc.sla.clocks import Trigger
from mailproc.store import db
from mailproc.vocabulary import EventKind, NoticeKind, Party
from mailproc.workflow.decision import Decision, Happening

log = logging.getLogger(__name__)
SYSTEM = Person("mailproc", "mailproc")
_ANSWERS = (NoticeKind.ACKNOWLEDGMENT, NoticeKind.TRANSCRIPT)


@dataclass(frozen=True, slots=True)
class Head:
    """What a notice's row has decided before its letter is written."""

    subject: str
    sender: str
    message_id: str
    date: datetime


@dataclass(frozen=True, slots=True)
class Change:
    """What one mail (or a system action) did to one incident: what the notices are about."""

    incident: db.Incident
    actor: Person
    now: datetime
    happenings: tuple[Happening, ...]
    mail: InboundMail | None = None
    created: bool = False
    commands: tuple[Command | BadCommand, ...] = ()
    decision: Decision | None = None
    sender_accepted: bool = True  # a stranger's mail gets no transcript (no backscatter)
    unproven: str | None = None  # why the sender is not proven: transcripts recorded, not sent
    unanswered: str | None = None  # why the sender gets no acknowledgment or transcript: the
    # Desk's verdict (an automatic mail, a sender over the limit), not decided again here
    known: Known | None = None
    rows: db.Rows | None = None  # the caller writes the notices' rows with its own
    files: Files = NO_FILES  # the mail's attachments, to ride along with the notices


class Outbox:
    """Turns changes into outbox rows; holds the templates, whose cache outlives one mail."""

    def __init__(self, settings: Settings, templates: Templates | None = None) -> None:
        """Raises SecretMissing when notices would be signed with a throw-away key."""
        _ = settings.verification_keys
        self.settings = settings
        self.templates = templates or Templates(
            folder_of(settings), compiled=settings.cache_folder("templates")
        )

    def after_change(self, session: Session, change: Change) -> int:
        """Queue the notices of a change; returns how many rows were written."""
        if not self.settings.notifications.enabled:
            return 0
        incident, settings, known = change.incident, self.settings, change.known
        watchers = known.watchers if known else None
        parties = parties_of(session, incident, change.actor, settings, watchers)
        notices = change_notices(change.happenings, parties, settings, incident.service)
        lines: tuple[CommandLine, ...] = ()
        if change.mail is not None and change.unanswered is None:
            if change.created:
                ack = direct_notices(NoticeKind.ACKNOWLEDGMENT, parties, settings, incident.service)
                notices = ack + notices
            if change.sender_accepted and wants_transcript(change.decision, settings):
                assert change.decision is not None
                lines = transcript(change.commands, change.decision, settings.language)
                notices += direct_notices(
                    NoticeKind.TRANSCRIPT, parties, settings, incident.service
                )
        if not notices:
            return 0
        answers = [n.recipient.email for n in notices if n.kind in _ANSWERS]
        held, trips = limits.screen(session, settings, answers, change.now)
        facts = incident_facts(session, incident, known)
        errors: tuple[ProblemFacts, ...] = ()
        if any(n.kind is NoticeKind.ACKNOWLEDGMENT for n in notices):
            errors = tuple(matching_known_errors(session, f"{facts.title}\n{_description(change)}"))
        occasion = Occasion(change.actor, change.now, change.happenings, lines, errors)
        trigger = change.mail.message_id if change.mail else None
        new = known is not None and known.new
        hold = {(kind, email): why for email, why in held.items() for kind in _ANSWERS}
        if change.unproven is not None:  # a refusal to a forgeable address would be backscatter
            for notice in notices:
                if notice.kind is NoticeKind.TRANSCRIPT:
                    hold[(notice.kind, notice.recipient.email)] = f"not sent: {change.unproven}"
        written = self._write(
            session, facts, notices, occasion, trigger, new, change.rows, hold, change.files
        )
        for trip in trips:
            written += self._alert(session, facts, parties, trip, change)
        return written

    def _alert(
        self,
        session: Session,
        facts: IncidentFacts,
        parties: Parties,
        trip: limits.Trip,
        change: Change,
    ) -> int:
        """Tell the administrators, once per opening, that a breaker stopped the answers."""
        log.warning("storm breaker open for %s: %s", trip.scope, trip.describe())
        notices = direct_notices(NoticeKind.ALERT, parties, self.settings, facts.service)
        alert = {
            "scope": "everyone" if trip.scope == limits.ALL else trip.scope,
            "count": trip.count,
            "limit": trip.limit,
            "reason": trip.describe(),
        }
        occasion = Occasion(SYSTEM, change.now, alert=alert)
        new = change.known is not None and change.known.new
        return self._write(session, facts, notices, occasion, None, new, change.rows)

    def queue_escalation(
        self,
        session: Session,
        incident_id: int,
        now: datetime,
        *,
        reason: str,
        level: int = 1,
        target: str = "",
        due: datetime | None = None,
        recipients: Sequence[str] | None = None,
        trigger: Trigger | None = None,
        late_by: timedelta | None = None,
        hold: str | None = None,
    ) -> list[tuple[str, str]]:
        """For the SLA pass, inside its transaction: tell people an incident is late. The
        recipients are the addresses the escalation level names; None: the `escalation`
        notice's configured recipients (by default the service's team). `hold`: the pass's
        token; the mails wait as `held` rows until the pass decides whether to fold them
        (mailproc.desk.escalations). Returns (recipient, Message-ID) of each mail to go."""
        incident = session.get(db.Incident, incident_id)
        if incident is None:
            return []
        escalation = {
            "level": level,
            "target": target,
            "reason": reason,
            "due": due,
            "trigger": str(trigger) if trigger else "",
            "percent": trigger.percent if trigger else None,
            "after_breach": trigger.after_breach if trigger and trigger.percent is None else None,
            "late_by": late_by,
        }
        occasion = Occasion(SYSTEM, now, escalation=escalation)
        rows = db.Rows()
        self._queue(session, incident, NoticeKind.ESCALATION, occasion, recipients, rows)
        written = rows.pending.get("outbox", [])
        going = [row for row in written if row["status"] == db.PENDING]
        for row in written if hold is not None else ():  # one executemany: the same columns
            held = row["status"] == db.PENDING
            row |= {
                "status": db.HELD if held else row["status"],
                "claim_token": hold if held else None,
            }
        rows.write(session)
        return [(row["recipient"], row["message_id"]) for row in going]

    def queue_problem_resolved(self, session: Session, problem: db.Problem, now: datetime) -> int:
        """Tell the reporters of the problem's open incidents that the cause is fixed."""
        facts = ProblemFacts(
            problem.id, problem.title, problem.symptoms, problem.workaround, problem.status
        )
        occasion = Occasion(SYSTEM, now, problem=facts)
        written = 0
        for incident in session.scalars(
            select(db.Incident)
            .join(db.IncidentProblem, db.IncidentProblem.incident_id == db.Incident.id)
            .where(db.IncidentProblem.problem_id == problem.id, db.Incident.closed_at.is_(None))
            .order_by(db.Incident.id)
        ):
            written += self._queue(session, incident, NoticeKind.PROBLEM_RESOLVED, occasion)
        return written

    def queue_reminder(
        self, session: Session, incident: db.Incident, now: datetime, closes: datetime | None
    ) -> int:
        """Remind the reporter that the desk waits for their answer (`closes`: when the
        incident closes without one, if it does)."""
        waiting = {"since": incident.updated_at, "closes": closes}
        occasion = Occasion(SYSTEM, now, waiting=waiting)
        return self._queue(session, incident, NoticeKind.REMINDER, occasion)

    def _queue(
        self,
        session: Session,
        incident: db.Incident,
        kind: NoticeKind,
        occasion: Occasion,
        addresses: Sequence[str] | None = None,
        pending: db.Rows | None = None,
    ) -> int:
        """A system action's notice to one incident's people: the notice kind's configured
        recipients, or the `addresses` an escalation level names. `pending`: the caller's
        rows, written by the caller."""
        if not self.settings.notifications.enabled:
            return 0
        parties = parties_of(session, incident, SYSTEM, self.settings)
        if addresses is None:
            notices = direct_notices(kind, parties, self.settings, incident.service)
        else:
            entries = [_role_of(address, parties) for address in addresses]
            found = resolve(entries, parties, self.settings.own_addresses)
            notices = [Notice(kind, r) for r in found]
        facts = incident_facts(session, incident)
        return self._write(session, facts, notices, occasion, None, pending=pending)

    def _write(
        self,
        session: Session,
        facts: IncidentFacts,
        notices: Sequence[Notice],
        occasion: Occasion,
        trigger: str | None,
        new: bool = False,
        pending: db.Rows | None = None,
        hold: Mapping[tuple[NoticeKind, str], str] | None = None,
        files: Files = NO_FILES,
    ) -> int:
        """`new`: the incident was opened by the trigger mail, so it is the thread's root and
        nobody has had mail about it yet. `pending`: the caller's rows, written with them.
        Held notices (an open breaker: `hold`; an undeliverable address) become suppressed
        rows that say why, so `incidents show` tells who was not told."""
        notices = capped(notices, self.settings.notifications.max_recipients, facts.number)
        emails = [n.recipient.email for n in notices]
        dead = undeliverable.marks(session, emails, occasion.now, self.settings.bounces)
        if new:
            root, last = trigger, {}
        else:
            root = thread_root(session, facts.number) or trigger
            last = last_sent(session, facts.number, emails)
        rows = pending if pending is not None else db.Rows()
        for notice in notices:
            why = (hold or {}).get((notice.kind, notice.recipient.email))
            mark = dead.get(notice.recipient.email)
            if why is not None or mark is not None:
                rows.add(db.Outbox, **self._suppressed(facts, notice, occasion, why or _text(mark)))
                continue
            thread = (root, last.get(notice.recipient.email), trigger)
            row = self._row(facts, notice, occasion, thread, files)
            rows.add(db.Outbox, **row)
            rows.add(db.ThreadRef, message_id=row["message_id"], incident_id=facts.number)
        if pending is None:
            rows.write(session)
        return len(notices)

    def _suppressed(
        self, facts: IncidentFacts, notice: Notice, occasion: Occasion, why: str
    ) -> dict[str, Any]:
        email = notice.recipient.email
        log.info("INC-%d: %s to %s suppressed: %s", facts.number, notice.kind, email, why)
        sender = self.sender_of(facts.service)
        return {
            "incident_id": facts.number,
            "kind": notice.kind.value,
            "recipient": email,
            "envelope_from": sender,
            "message_id": self.new_message_id(facts.number, email, sender),
            "subject": "",
            "letter": None,
            "status": db.SUPPRESSED,
            "attempts": 0,
            "created_at": occasion.now,
            "next_attempt_at": occasion.now,
            "error": why,
        }

    def sender_of(self, service: str) -> str:
        notifications = self.settings.notifications
        return notifications.from_address or self.settings.support_address_of(service)

    def _row(
        self,
        facts: IncidentFacts,
        notice: Notice,
        occasion: Occasion,
        thread: tuple[str | None, str | None, str | None],
        files: Files = NO_FILES,
    ) -> dict[str, Any]:
        """The outbox row (its values) of one notice, rendered; failed with the reason when
        a template or an address is wrong."""
        email = notice.recipient.email
        staff = self.settings.is_staff(email)
        chosen = choose(files, notice.kind, email, staff, self.settings.notifications)
        sender = self.sender_of(facts.service)
        message_id = self.new_message_id(facts.number, email, sender)
        row: dict[str, Any] = {
            "incident_id": facts.number,
            "kind": notice.kind.value,
            "recipient": email,
            "envelope_from": sender,
            "message_id": message_id,
            "status": db.PENDING,
            "attempts": 0,
            "created_at": occasion.now,
            "next_attempt_at": occasion.now,
            "error": None,
        }
        try:
            reader = reader_for(notice, facts, self.settings)
            context = build_context(
                notice, facts, occasion, self.settings, chosen.listed, reader=reader
            )
            rendered = self.templates.render(notice.kind, facts.service, context, reader.language)
            subject = tagged_subject(rendered.subject, facts.number, self._proof(facts, email))
            head = Head(subject, sender, message_id, occasion.now)
            letter = self._letter(head, rendered, notice, facts, thread, chosen.attached)
            check_addresses(letter)
            return row | {"subject": subject, "letter": letter_to_json(letter)}
        except (TemplateProblem, ValueError) as exc:
            log.error("INC-%d: %s notice to %s not sent: %s", facts.number, notice.kind, email, exc)
            return row | {"subject": "", "letter": None, "status": db.FAILED, "error": str(exc)}

    def reply_to_of(self, service: str, number: int, recipient: str) -> str:
        """The support address; with `plus`, carrying the recipient's token, so that their
        replies prove who they are (with `plain` the Message-ID and subject carry it).
        `number` 0: the desk's own mail (mailproc.notify.desk_letters)."""
        support = self.settings.support_address_of(service)
        if self.settings.notifications.reply_address == "plain":
            return support
        return reply_address(self.settings.signing_key, support, number, recipient)

    def _proof(self, facts: IncidentFacts, recipient: str) -> str:
        if self.settings.notifications.reply_address != "plain":
            return ""
        return subject_token(self.settings.signing_key, facts.number, recipient)

    def new_message_id(self, number: int, recipient: str, sender: str) -> str:
        domain = sender.partition("@")[2]
        return make_message_id(self.settings.signing_key, number, recipient, nonce(), domain)

    def _letter(
        self,
        head: Head,
        rendered: Rendered,
        notice: Notice,
        facts: IncidentFacts,
        thread: tuple[str | None, str | None, str | None],
        attachments: tuple[Enclosure, ...] = (),
    ) -> Letter:
        """Threading: the parent is our last mail to this person, else the mail being answered,
        else the incident's first mail; References name all three, so every client keeps the
        incident in one thread."""
        root, previous, trigger = thread
        return Letter(
            subject=head.subject,
            text=rendered.text,
            html=rendered.html,
            from_name=self.settings.notifications.from_name,
            from_address=head.sender,
            to_name=notice.recipient.name,
            to_address=notice.recipient.email,
            reply_to=self.reply_to_of(facts.service, facts.number, notice.recipient.email),
            message_id=head.message_id,
            in_reply_to=previous or trigger or root,
            references=tuple(r for r in thread if r),
            auto_submitted=AUTO_REPLIED if notice.kind in _ANSWERS else AUTO_GENERATED,
            date=head.date,
            attachments=attachments,
        )


def capped(notices: Sequence[Notice], cap: int, number: int) -> list[Notice]:
    """At most `cap` recipients of each kind of notice: the people with a part in the incident
    first, watchers last; whoever a mail made a watcher, one change never becomes a mailing."""
    by_kind: dict[NoticeKind, list[Notice]] = {}
    for notice in notices:
        by_kind.setdefault(notice.kind, []).append(notice)
    kept: list[Notice] = []
    for kind, group in by_kind.items():
        if len(group) > cap:
            group = sorted(group, key=lambda n: n.recipient.role == Party.WATCHERS)
            log.warning(
                "INC-%d: %s notice to %d recipients, capped at %d "
                "(notifications.max_recipients); not sent to %s",
                number,
                kind,
                len(group),
                cap,
                ", ".join(n.recipient.email for n in group[cap:]),
            )
        kept.extend(group[:cap])
    return kept


def _role_of(address: str, parties: Parties) -> str:
    """An address named by an escalation level, as the role it plays here, if it plays one."""
    roles = {
        Party.ASSIGNEE: parties.assignee.email if parties.assignee else None,
        Party.TEAM: parties.team,
        Party.FIRST_LINE: parties.first_line,
    }
    return next((str(role) for role, email in roles.items() if email == address), address)


def _text(mark: undeliverable.Mark | None) -> str:
    return mark.describe() if mark is not None else ""


def _description(change: Change) -> str:
    for happening in change.happenings:
        if happening.kind is EventKind.CREATED:
            return str(happening.detail.get("text", ""))
    return ""
