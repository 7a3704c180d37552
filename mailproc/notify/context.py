"""The variables a notification template sees, built from plain facts about one incident.

Pure. Templates get dicts, lists and strings only, never ORM rows or settings objects, so the
sandbox has nothing to reach through and docs/admin/templates.md can list every variable. Every
variable exists in every template (None or empty where it does not apply), so one template can
serve several notice kinds and a typo still fails loudly under StrictUndefined. The sample facts
at the end are what `mailproc templates check` and `preview` render with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mailproc.config.locale import text_in
from mailproc.config.settings import Settings, StatusConfig
from mailproc.inbound.subject import SPECS
from mailproc.notify.enclosures import Files, MailFile, choose
from mailproc.notify.events import describe_event
from mailproc.notify.formats import Duration, LocalTime
from mailproc.notify.letter import Enclosure
from mailproc.notify.readers import Reader, reader_of
from mailproc.notify.recipients import CommandLine, Notice, Person, Recipient
from mailproc.vocabulary import (
    DESK_NOTICES,
    INTERNAL_EVENTS,
    EventKind,
    NoticeKind,
    Party,
    Role,
    StatusKind,
    Verb,
)
from mailproc.workflow.decision import Happening


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    at: datetime
    actor: str
    kind: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ProblemFacts:
    number: int
    title: str
    symptoms: str
    workaround: str
    status: str


@dataclass(frozen=True, slots=True)
class IncidentFacts:
    number: int
    title: str
    service: str
    status: str
    priority: str
    assignee: str | None
    reporter: str
    reporter_name: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    follow_up_of: int | None = None
    history: tuple[HistoryEntry, ...] = ()
    problems: tuple[ProblemFacts, ...] = ()


@dataclass(frozen=True, slots=True)
class Occasion:
    """What a round of notices is about: the events of one mail, or a system action."""

    actor: Person
    now: datetime
    happenings: tuple[Happening, ...] = ()
    commands: tuple[CommandLine, ...] = ()
    known_errors: tuple[ProblemFacts, ...] = ()
    problem: ProblemFacts | None = None
    escalation: Mapping[str, Any] | None = field(default=None)
    alert: Mapping[str, Any] | None = field(default=None)
    waiting: Mapping[str, Any] | None = field(default=None)


def when(moment: datetime | None) -> str:
    """An instant for logs and the command line: UTC, to the minute."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def reader_for(notice: Notice, facts: IncidentFacts, settings: Settings) -> Reader:
    """The notice's reader; a reporter outside the directory may have declared a language in
    the mail that opened the incident (kept with its `created` event)."""
    email = notice.recipient.email
    hint = None
    if email == facts.reporter:
        created = next((e for e in facts.history if e.kind == EventKind.CREATED), None)
        hint = str(created.detail.get("language") or "") or None if created else None
    return reader_of(email, settings, facts.service, hint, notice.recipient.name)


def build_context(
    notice: Notice,
    facts: IncidentFacts,
    occasion: Occasion,
    settings: Settings,
    attachments: Sequence[Mapping[str, Any]] = (),
    reader: Reader | None = None,
) -> dict[str, Any]:
    """The variables of one notice for its reader: times and durations are LocalTime and
    Duration objects in the reader's zone and language; texts written per language (service
    titles, status instructions) in the reader's."""
    reader = reader or reader_for(notice, facts, settings)
    at = _clock(reader)
    language, default = reader.language, settings.locale.language
    problems = {p.number: p for p in facts.problems}
    cause = dict(notice.cause.detail) if notice.cause else None
    problem = occasion.problem
    if problem is None and notice.cause and notice.cause.kind is EventKind.RELATED:
        problem = problems.get(int(notice.cause.detail["problem"]))
    internal = settings.is_staff(notice.recipient.email)
    status = settings.workflow_of(facts.service).status(facts.status)
    shown = [e for e in facts.history if internal or e.kind not in INTERNAL_EVENTS]
    changed = [
        h
        for h in occasion.happenings
        if h.kind not in _TEXTS and (internal or h.kind not in INTERNAL_EVENTS)
    ]
    return {
        "event": notice.kind.value,
        "recipient": _recipient(notice.recipient, reader, internal),
        "incident": _incident(facts, status, at),
        "history": [_history(entry, at) for entry in shown],
        "service": _service(facts.service, settings, language),
        "people": _people(facts, occasion.actor, settings),
        "problems": [_problem(p) for p in facts.problems],
        "problem": _problem(problem) if problem else None,
        "instructions": text_in(status.instructions, language, default),
        "reply": reply_of(notice.recipient, facts, settings),
        "change": cause,
        "changes": [describe_event(h.kind, dict(h.detail)) for h in changed],
        "changed": [{"kind": h.kind.value, "detail": dict(h.detail)} for h in changed],
        "comment": _said(occasion, EventKind.COMMENT),
        "note": _said(occasion, EventKind.NOTE) if internal else "",
        "warning": _warning(occasion) if internal else "",
        "commands": [_command(line) for line in occasion.commands],
        "retry": _retry(occasion.commands, facts),
        "known_errors": [_problem(p) for p in occasion.known_errors],
        "escalation": _escalation(occasion.escalation, reader),
        "alert": dict(occasion.alert) if occasion.alert else None,
        "waiting": (
            {k: at(v) if isinstance(v, datetime) else v for k, v in occasion.waiting.items()}
            if occasion.waiting
            else None
        ),
        "attachments": [dict(entry) for entry in attachments],
        "now": at(occasion.now),
    }


def desk_context(
    notice: Notice,
    settings: Settings,
    now: datetime,
    payload: Mapping[str, Any],
    reader: Reader | None = None,
) -> dict[str, Any]:
    """The variables of a notice about no one incident (mailproc.vocabulary.DESK_NOTICES):
    no `incident`, `history` or `people`; `query`, `digest` or `escalations` instead."""
    internal = settings.is_staff(notice.recipient.email)
    email, name = notice.recipient.email, notice.recipient.name
    reader = reader or reader_of(email, settings, settings.default_service, None, name)
    language = reader.language
    context: dict[str, Any] = {
        "event": notice.kind.value,
        "recipient": _recipient(notice.recipient, reader, internal),
        "desk": {
            "support_address": settings.support_address,
            "services": [_service(s, settings, language) for s in sorted(settings.services)],
        },
        "query": None,
        "digest": None,
        "escalations": None,
        "now": LocalTime(now, reader.zone, language),
    }
    return context | {key: _for_reader(value, reader) for key, value in payload.items()}


def _for_reader(value: Any, reader: Reader) -> Any:
    """A payload's instants and amounts as the reader reads them (LocalTime, Duration)."""
    if isinstance(value, datetime):
        return LocalTime(value, reader.zone, reader.language)
    if isinstance(value, timedelta):
        return Duration(value, reader.language)
    if isinstance(value, Mapping):
        return {k: _for_reader(v, reader) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_for_reader(v, reader) for v in value]
    return value


def _clock(reader: Reader) -> Callable[[datetime | None], LocalTime | None]:
    def at(moment: datetime | None) -> LocalTime | None:
        return None if moment is None else LocalTime(moment, reader.zone, reader.language)

    return at


def _escalation(escalation: Mapping[str, Any] | None, reader: Reader) -> dict[str, Any] | None:
    """Instants and amounts of the escalation for the reader; `reason` stays in English."""
    if escalation is None:
        return None
    found = dict(escalation)
    due = found.get("due")
    found["due"] = LocalTime(due, reader.zone, reader.language) if due else None
    for key in ("late_by", "after_breach"):
        amount = found.get(key)
        found[key] = Duration(amount, reader.language) if amount is not None else None
    return found


def _recipient(recipient: Recipient, reader: Reader, internal: bool) -> dict[str, Any]:
    return {
        "email": recipient.email,
        "name": recipient.name or reader.name,
        "role": recipient.role,
        "internal": internal,
        "language": reader.language,
        "zone": reader.zone,
    }


def _incident(
    facts: IncidentFacts, status: StatusConfig, at: Callable[[datetime | None], LocalTime | None]
) -> dict[str, Any]:
    return {
        "ref": f"INC-{facts.number}",
        "number": facts.number,
        "title": facts.title,
        "service": facts.service,
        "status": facts.status,
        "status_kind": status.kind.value,
        "priority": facts.priority,
        "assignee": facts.assignee,
        "reporter": facts.reporter,
        "reporter_name": facts.reporter_name,
        "created": at(facts.created_at),
        "updated": at(facts.updated_at),
        "closed": at(facts.closed_at),
        "follow_up_of": f"INC-{facts.follow_up_of}" if facts.follow_up_of else None,
        "description": _description(facts),
    }


def _description(facts: IncidentFacts) -> str:
    created = next((e for e in facts.history if e.kind == EventKind.CREATED), None)
    return str(created.detail.get("text", "")) if created else ""


_TEXTS = (EventKind.CREATED, EventKind.COMMENT, EventKind.NOTE)  # events that carry a text


def _history(
    entry: HistoryEntry, at: Callable[[datetime | None], LocalTime | None]
) -> dict[str, Any]:
    text = entry.detail.get("text") if entry.kind in _TEXTS else None
    return {
        "at": at(entry.at),
        "actor": entry.actor,
        "kind": entry.kind,
        "internal": entry.kind in INTERNAL_EVENTS,
        "summary": describe_event(entry.kind, dict(entry.detail)),
        "detail": dict(entry.detail),
        "text": str(text) if text else "",
    }


def _service(name: str, settings: Settings, language: str = "") -> dict[str, Any]:
    service = settings.services[name]
    return {
        "name": name,
        "title": text_in(service.title, language, settings.locale.language) or name,
        "team": service.team,
        "first_line": service.first_line,
        "workflow": service.workflow,
        "support_address": settings.support_address_of(name),
        "solvers": _solvers(name, settings),
    }


def _solvers(service: str, settings: Settings) -> list[str]:
    return sorted(
        n for n, p in settings.people.items() if p.role is Role.SOLVER and p.solves(service)
    )


def _people(facts: IncidentFacts, actor: Person, settings: Settings) -> dict[str, Any]:
    person = settings.people.get(facts.assignee) if facts.assignee else None
    assignee = {"name": facts.assignee, "email": person.email} if person else None
    return {
        "reporter": {"name": facts.reporter_name, "email": facts.reporter},
        "assignee": assignee,
        "actor": {"name": actor.name, "email": actor.email},
    }


def _problem(problem: ProblemFacts) -> dict[str, Any]:
    return {
        "ref": f"PRB-{problem.number}",
        "number": problem.number,
        "title": problem.title,
        "symptoms": problem.symptoms,
        "workaround": problem.workaround,
        "status": problem.status,
    }


def reply_of(recipient: Recipient, facts: IncidentFacts, settings: Settings) -> dict[str, Any]:
    """How this recipient answers: where to, with which subject, with which commands (as
    examples that work when copied into the subject as they are)."""
    workflow = settings.workflow_of(facts.service)
    verbs = [verb for verb, table in workflow.transitions.items() if facts.status in table]
    if workflow.status(facts.status).kind is StatusKind.OPEN:
        verbs.append(Verb.ACK)  # needs no transition entry
    known = settings.people_by_email.get(recipient.email)
    solver = known is not None and known[1].solves(facts.service)
    desk = solver or recipient.email in settings.staff_addresses  # a solver, or a team list
    if Verb.CLOSE in verbs:
        verbs.append(Verb.MERGE)  # closes a duplicate where CLOSE may close it
    if desk:
        verbs += [Verb.CC, Verb.NOTE]
    else:
        mine = settings.permissions.reporter_commands if recipient.email == facts.reporter else ()
        verbs = [verb for verb in verbs if verb in mine]
    return {
        "address": settings.support_address_of(facts.service),
        "subject": f"Re: [INC-{facts.number}] {facts.title}",
        "commands": [example(verb, facts, settings, desk) for verb in verbs],
        "syntax": [SPECS[verb].syntax for verb in verbs],
    }


def example(verb: Verb, facts: IncidentFacts, settings: Settings, desk: bool = True) -> str:
    """A command as it can be copied into a subject: a real value where the command needs
    one and a sensible one exists (`[ASSIGN]` for the desk's people, who take it themselves),
    the written form where only the reader knows the value (`[RELATE PRB-n]`)."""
    match verb:
        case Verb.ASSIGN:
            solvers = [] if desk else _solvers(facts.service, settings)
            return f"[ASSIGN {solvers[0]}]" if solvers else "[ASSIGN]"
        case Verb.PRIORITY:
            return "[PRIORITY P1]" if facts.priority != "P1" else "[PRIORITY P2]"
        case Verb.IMPACT | Verb.URGENCY:
            return f"[{verb} {settings.language.levels[verb][0]}]"
        case Verb.MOVE:
            others = sorted(name for name in settings.services if name != facts.service)
            return f"[MOVE {others[0]}]" if others else SPECS[verb].syntax
        case Verb.CC:
            return "[CC +someone@example.org]"
    return SPECS[verb].syntax


def _warning(occasion: Occasion) -> str:
    """Why the mail's sender may not be who the display name says, for the desk's people."""
    for happening in occasion.happenings:
        if happening.kind is EventKind.SENDER_WARNING:
            return str(happening.detail.get("warning", ""))
    return ""


def _said(occasion: Occasion, kind: EventKind) -> str:
    """The text the occasion's mail added as a comment (or as a note)."""
    for happening in occasion.happenings:
        if happening.kind is kind:
            return str(happening.detail.get("text", ""))
    return ""


def _retry(lines: tuple[CommandLine, ...], facts: IncidentFacts) -> str:
    """A subject that retries the mail's commands, when a retry can work as written: a
    mistyped word we could mend, or commands refused only for want of proof (a reply to the
    transcript carries the sender's token). Empty otherwise."""
    refused = [line for line in lines if not line.applied]
    if not refused or not all(line.example for line in lines):
        return ""
    mended = any(line.example != line.text for line in lines)
    unproven = all(
        line.reason.startswith("not authenticated") or line.example != line.text
        for line in refused
        if not line.reason.startswith("not applied, because")
    )
    if not (mended or unproven):
        return ""
    return f"Re: [INC-{facts.number}] {facts.title} " + " ".join(line.example for line in lines)


def _command(line: CommandLine) -> dict[str, Any]:
    outcome = "applied" if line.applied else "refused"
    return {
        "text": line.text,
        "outcome": outcome,
        "reason": line.reason,
        "syntax": line.syntax,
        "example": line.example,
    }


# --- sample data for `templates check` and `templates preview` ------------------------------

SAMPLE_NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def sample_facts(settings: Settings, service: str) -> IncidentFacts:
    workflow = settings.workflow_of(service)
    solvers = sorted(
        settings.people.items(), key=lambda item: (item[1].role is not Role.SOLVER, item[0])
    )
    solver = next((name for name, person in solvers if person.solves(service)), None)
    start = SAMPLE_NOW - timedelta(minutes=30)
    text = "Since 9:00 nobody in accounting can send mail. Outlook says 'Disconnected'."
    return IncidentFacts(
        number=42,
        title="Cannot send mail",
        service=service,
        status=workflow.initial,
        priority=settings.services[service].default_priority.value,
        assignee=solver,
        reporter="alice@example.org",
        reporter_name="Alice Novák",
        created_at=start,
        updated_at=SAMPLE_NOW,
        history=(
            HistoryEntry(start, "alice@example.org", "created", _created(service, text)),
            HistoryEntry(SAMPLE_NOW, "alice@example.org", "comment", {"text": "Still down."}),
            HistoryEntry(SAMPLE_NOW, "tina@example.com", "note", {"text": "Relay queue again?"}),
        ),
        problems=(SAMPLE_PROBLEM,),
    )


def _created(service: str, text: str) -> dict[str, Any]:
    return {"title": "Cannot send mail", "service": service, "text": text}


SAMPLE_PROBLEM = ProblemFacts(
    7,
    "Mail server certificate expired",
    "Outlook shows Disconnected; mail cannot be sent",
    "Restart Outlook after the renewal; use webmail meanwhile.",
    "known_error",
)


def sample_occasion(
    kind: NoticeKind, facts: IncidentFacts, comment: bool = True
) -> tuple[Happening | None, Occasion]:
    """A plausible cause and occasion for each kind, so every branch of a template has data."""
    cause = _SAMPLE_CAUSES.get(kind)
    commented = comment and kind is not NoticeKind.NOTE
    said = (Happening(EventKind.COMMENT, {"text": "Still down."}),) if commented else ()
    happenings = said + ((cause,) if cause else ())
    commands = (
        CommandLine("[ASSIGN tina]", True, "", SPECS[Verb.ASSIGN].syntax, "[ASSIGN tina]"),
        CommandLine("[CLOSE]", False, "CLOSE is not allowed in status New", "[CLOSE]", "[CLOSE]"),
    )
    return cause, Occasion(
        actor=Person(facts.reporter, facts.reporter_name),
        now=SAMPLE_NOW,
        happenings=happenings,
        commands=commands if kind is NoticeKind.TRANSCRIPT else (),
        known_errors=(SAMPLE_PROBLEM,) if kind is NoticeKind.ACKNOWLEDGMENT else (),
        problem=SAMPLE_PROBLEM if kind is NoticeKind.PROBLEM_RESOLVED else None,
        escalation=_SAMPLE_ESCALATION if kind is NoticeKind.ESCALATION else None,
        alert=_SAMPLE_ALERT if kind is NoticeKind.ALERT else None,
        waiting=_SAMPLE_WAITING if kind is NoticeKind.REMINDER else None,
    )


_SAMPLE_ESCALATION = {
    "level": 1,
    "target": "resolution",
    "trigger": "75%",
    "percent": 75.0,
    "after_breach": None,
    "late_by": -timedelta(hours=2),
    "reason": "75% of the resolution time used, 2h of business time left",
    "due": datetime(2026, 11, 23, 11, 30, tzinfo=UTC),
}
_SAMPLE_WAITING = {
    "since": datetime(2026, 11, 20, 9, 30, tzinfo=UTC),
    "closes": datetime(2026, 11, 30, 9, 30, tzinfo=UTC),
}
_SAMPLE_ALERT = {
    "scope": "everyone",
    "count": 300,
    "limit": 300,
    "reason": "300 acknowledgments and transcripts in the last hour (limit 300 an hour, "
    "limits.replies_per_hour)",
}
_SAMPLE_CAUSES: dict[NoticeKind, Happening] = {
    NoticeKind.NEW_INCIDENT: Happening(EventKind.CREATED, _created("general", "")),
    NoticeKind.ASSIGNED: Happening(EventKind.ASSIGNED, {"from": None, "to": "tina"}),
    NoticeKind.MOVED: Happening(EventKind.MOVED, {"from": "general", "to": "email"}),
    NoticeKind.PRIORITY: Happening(EventKind.PRIORITY, {"from": "P3", "to": "P1"}),
    NoticeKind.RELATED: Happening(EventKind.RELATED, {"problem": SAMPLE_PROBLEM.number}),
    NoticeKind.RESOLVED: Happening(
        EventKind.STATUS, {"from": "New", "to": "Resolved", "by": "RESOLVE"}
    ),
    NoticeKind.CLOSED: Happening(EventKind.STATUS, {"from": "New", "to": "Closed", "by": "CLOSE"}),
    NoticeKind.REOPENED: Happening(
        EventKind.STATUS, {"from": "Closed", "to": "New", "by": "reply"}
    ),
    NoticeKind.COMMENT: Happening(EventKind.COMMENT, {"text": "Still down."}),
    NoticeKind.NOTE: Happening(EventKind.NOTE, {"text": "Same as INC-40: the relay's queue."}),
    NoticeKind.QUESTION: Happening(
        EventKind.STATUS, {"from": "Solution", "to": "Waiting", "by": "WAIT"}
    ),
    NoticeKind.RESUMED: Happening(
        EventKind.STATUS, {"from": "Waiting", "to": "Solution", "by": "reply"}
    ),
    NoticeKind.MERGED: Happening(EventKind.MERGED_INTO, {"incident": 40}),
    NoticeKind.MERGED_IN: Happening(
        EventKind.MERGED,
        {
            "incident": 43,
            "title": "Outlook disconnected",
            "reporter": "bob@example.org",
            "texts": [
                {
                    "at": "2026-11-23T09:20:00+00:00",
                    "actor": "bob@example.org",
                    "kind": "created",
                    "text": "Outlook says Disconnected since this morning.",
                }
            ],
        },
    ),
}


SAMPLE_FILES = Files(
    (
        MailFile(1, Enclosure("0" * 64, "screenshot.png", "image/png", 48_213)),
        MailFile(2, Enclosure("1" * 64, "outlook.log", "text/plain", 9_400_000)),
    ),
    sender="alice@example.org",
)


def sample_attachments(notice: Notice, settings: Settings) -> tuple[dict[str, Any], ...]:
    """The sample mail's files as this recipient's notice would show them: one attached,
    one too large (with the default limit)."""
    email = notice.recipient.email
    staff = settings.is_staff(email)
    return choose(SAMPLE_FILES, notice.kind, email, staff, settings.notifications).listed


def sample_context(
    notice: Notice,
    facts: IncidentFacts,
    occasion: Occasion,
    settings: Settings,
    reader: Reader | None = None,
) -> dict[str, Any]:
    """What `templates check` and `preview` render a kind with: the sample incident's
    context, or for a notice about no one incident its sample payload."""
    if notice.kind in DESK_NOTICES:
        return desk_context(notice, settings, SAMPLE_NOW, _SAMPLE_DESK[notice.kind], reader)
    files = sample_attachments(notice, settings)
    return build_context(notice, facts, occasion, settings, files, reader=reader)


_SAMPLE_LINE = {
    "summary": "email · P2 · Solution · tina · at risk",
    "target": "resolution",
    "plain": "status Solution, with tina",
    "ref": "INC-42",
    "number": 42,
    "title": "Cannot send mail",
    "service": "email",
    "status": "Solution",
    "priority": "P2",
    "assignee": "tina",
    "standing": "at risk",
    "waiting": False,
    "due": datetime(2026, 11, 23, 17, 0, tzinfo=UTC),
}
_SAMPLE_WAITING_LINE = _SAMPLE_LINE | {
    "summary": "email · P2 · Waiting · tina · paused",
    "target": "",
    "plain": "status Waiting (waiting for your answer), with tina",
    "ref": "INC-43",
    "number": 43,
    "title": "Printer offline",
    "status": "Waiting",
    "standing": "paused",
    "waiting": True,
    "due": None,
}
_SAMPLE_SECTIONS = [
    {
        "kind": "list",
        "title": "Open incidents of email (2)",
        "services": ["email"],
        "refused": "",
        "incidents": [_SAMPLE_LINE, _SAMPLE_WAITING_LINE],
        "count": 2,
        "more": 0,
        "commands": [],
    },
    {
        "kind": "mine",
        "title": "Assigned to you (0)",
        "refused": "",
        "incidents": [],
        "count": 0,
        "more": 0,
        "commands": [],
    },
    {
        "kind": "status",
        "title": "Your open reports (1)",
        "refused": "",
        "incidents": [_SAMPLE_WAITING_LINE],
        "count": 1,
        "more": 0,
        "commands": [],
    },
    {
        "kind": "help",
        "title": "What you can do with INC-42 (Solution)",
        "refused": "",
        "incidents": [],
        "count": 0,
        "more": 0,
        "commands": ["[CLOSE]", "[NOTE]"],
        "queries": ["[STATUS]", "[HELP]"],
        "incident": {"ref": "INC-42", "title": "Cannot send mail", "status": "Solution"},
        "subject": "Re: [INC-42] Cannot send mail",
    },
    {
        "kind": "help",
        "title": "How to write to the desk",
        "refused": "",
        "incidents": [],
        "count": 0,
        "more": 0,
        "commands": ["[ASSIGN person], or [ASSIGN] to take it yourself"],
        "queries": ["[LIST]", "[MINE]", "[HELP]", "[STATUS]"],
        "incident": None,
    },
    {
        "kind": "refused",
        "title": "[LIST] not answered",
        "asked": "[LIST]",
        "refused": "not authenticated: reply to one of our mails",
        "incidents": [],
        "count": 0,
        "more": 0,
        "commands": [],
    },
]
_SAMPLE_DESK: dict[NoticeKind, dict[str, Any]] = {
    NoticeKind.ANSWER: {"query": {"asked": "[LIST] [HELP]", "sections": _SAMPLE_SECTIONS}},
    NoticeKind.DIGEST: {
        "digest": {
            "for": "tina",
            "team": None,
            "at": datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
            "sections": [
                {
                    "kind": "breached",
                    "title": "Breached",
                    "incidents": [
                        _SAMPLE_LINE
                        | {
                            "standing": "breached",
                            "summary": "email · P2 · Solution · tina · breached",
                            "due": datetime(2026, 11, 23, 7, 0, tzinfo=UTC),
                        }
                    ],
                    "count": 1,
                    "more": 0,
                },
                {
                    "kind": "at_risk",
                    "title": "At risk",
                    "incidents": [_SAMPLE_LINE],
                    "count": 1,
                    "more": 0,
                },
                {
                    "kind": "waiting",
                    "title": "Waiting for the reporter",
                    "incidents": [_SAMPLE_WAITING_LINE],
                    "count": 1,
                    "more": 0,
                },
            ],
            "count": 3,
        }
    },
    NoticeKind.ESCALATIONS: {
        "escalations": {
            "count": 6,
            "items": [
                {
                    "ref": f"INC-{40 + n}",
                    "number": 40 + n,
                    "title": "Cannot send mail",
                    "service": "email",
                    "priority": "P2",
                    "assignee": None,
                    "level": 2,
                    "target": "resolution",
                    "reason": "the resolution target is breached, 1h of business time late",
                    "due": datetime(2026, 11, 23, 9, 0, tzinfo=UTC),
                }
                for n in range(6)
            ],
        }
    },
}


def sample_recipient(role: str, facts: IncidentFacts, settings: Settings) -> Recipient:
    """Someone in that role on the sample incident, so reply instructions come out as real."""
    service = settings.services[facts.service]
    person = settings.people.get(facts.assignee) if facts.assignee else None
    admins = [p.email for p in settings.people.values() if p.role is Role.ADMIN]
    emails = {
        Party.REPORTER: facts.reporter,
        Party.SENDER: facts.reporter,
        Party.ASSIGNEE: person.email if person else None,
        Party.TEAM: service.team,
        Party.FIRST_LINE: service.first_line,
        Party.ADMINS: admins[0] if admins else None,
    }
    email = emails.get(Party(role)) if role in emails else None
    name = facts.reporter_name if email == facts.reporter else (facts.assignee or "")
    return Recipient(email or "someone@example.org", name if email else "", role)
