"""Who is told what after a change: the events of one applied mail become notices.

Pure. The history events a mail caused (a comment, an assignment, a status change, ...) map to
kinds of notice; each kind goes to people named by their part in the incident (reporter,
assignee, watchers, the service's team or first line, the sender) as the configuration says,
per service or for all, with the defaults below. One mail gives each person at most one
notice, the most important one, whose template can show every change the mail made; the
answers to the sender (acknowledgment, transcript) are separate and are never sent in answer to
automatic mail (the shell decides that, it has the mail).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mailproc.config.settings import Settings, StatusConfig
from mailproc.inbound.subject import SPECS, BadCommand, Command, Language
from mailproc.vocabulary import INTERNAL_NOTICES, EventKind, NoticeKind, Party, StatusKind
from mailproc.workflow.decision import Decision, Happening

DEFAULT_RECIPIENTS: Mapping[NoticeKind, tuple[str, ...]] = {
    NoticeKind.ACKNOWLEDGMENT: (Party.REPORTER,),
    NoticeKind.NEW_INCIDENT: (Party.FIRST_LINE,),
    NoticeKind.ASSIGNED: (Party.ASSIGNEE, Party.REPORTER),
    NoticeKind.COMMENT: (Party.REPORTER, Party.ASSIGNEE, Party.WATCHERS),
    NoticeKind.MOVED: (Party.TEAM,),
    NoticeKind.PRIORITY: (Party.ASSIGNEE,),
    NoticeKind.RELATED: (Party.REPORTER,),
    NoticeKind.RESOLVED: (Party.REPORTER,),
    NoticeKind.CLOSED: (Party.REPORTER,),
    NoticeKind.REOPENED: (Party.ASSIGNEE,),
    NoticeKind.TRANSCRIPT: (Party.SENDER,),
    NoticeKind.ESCALATION: (Party.TEAM,),
    NoticeKind.PROBLEM_RESOLVED: (Party.REPORTER,),
    NoticeKind.ALERT: (Party.ADMINS,),
    NoticeKind.NOTE: (Party.ASSIGNEE, Party.TEAM, Party.WATCHERS),
    NoticeKind.QUESTION: (Party.REPORTER,),
    NoticeKind.RESUMED: (Party.ASSIGNEE,),
    NoticeKind.REMINDER: (Party.REPORTER,),
    NoticeKind.MERGED: (Party.REPORTER, Party.WATCHERS),
    NoticeKind.MERGED_IN: (Party.ASSIGNEE, Party.WATCHERS),
    NoticeKind.ANSWER: (Party.SENDER,),
    # each solver their own queue ("assignee"), each service's team its queue ("team")
    NoticeKind.DIGEST: (Party.ASSIGNEE, Party.TEAM),
    NoticeKind.ESCALATIONS: (Party.TEAM,),  # in fact the escalation levels' own recipients
}

# One mail, one notice per person: the first of these kinds that concerns them.
PRECEDENCE: tuple[NoticeKind, ...] = (
    NoticeKind.REOPENED,
    NoticeKind.RESUMED,
    NoticeKind.RESOLVED,
    NoticeKind.MERGED,
    NoticeKind.CLOSED,
    NoticeKind.QUESTION,
    NoticeKind.ASSIGNED,
    NoticeKind.NEW_INCIDENT,
    NoticeKind.MOVED,
    NoticeKind.RELATED,
    NoticeKind.PRIORITY,
    NoticeKind.MERGED_IN,
    NoticeKind.NOTE,
    NoticeKind.COMMENT,
)

ADDRESS_ROLE = "address"  # a recipient configured by address rather than by role


@dataclass(frozen=True, slots=True)
class Person:
    email: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Parties:
    """The people around one incident, by their part in it."""

    reporter: Person
    assignee: Person | None
    watchers: tuple[str, ...]
    team: str | None
    first_line: str | None
    sender: Person
    admins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    name: str
    role: str  # a Party value, or ADDRESS_ROLE


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    recipient: Recipient
    cause: Happening | None = None  # the event that chose this kind, if one did


@dataclass(frozen=True, slots=True)
class CommandLine:
    """One command of a mail, for the transcript: what happened to it and how it is written."""

    text: str
    applied: bool
    reason: str
    syntax: str
    example: str = ""  # the command as it would be accepted, for a refused one we can mend


def recipients_of(kind: NoticeKind, service: str, settings: Settings) -> tuple[str, ...]:
    """The service's override, else the deployment's, else the default."""
    override = settings.services[service].notify.get(kind)
    if override is not None:
        return override
    return settings.notifications.recipients.get(kind, DEFAULT_RECIPIENTS[kind])


def resolve(entries: Iterable[str], parties: Parties, own: frozenset[str]) -> list[Recipient]:
    """Roles to addresses, each address once, never one of our own (that would be a loop)."""
    found: dict[str, Recipient] = {}
    for entry in entries:
        for person in _people(entry, parties):
            if person.email and person.email not in own and person.email not in found:
                role = entry if entry in Party.__members__.values() else ADDRESS_ROLE
                found[person.email] = Recipient(person.email, person.name, role)
    return list(found.values())


def _people(entry: str, parties: Parties) -> list[Person]:
    single = {
        Party.REPORTER: parties.reporter,
        Party.ASSIGNEE: parties.assignee,
        Party.SENDER: parties.sender,
        Party.TEAM: Person(parties.team) if parties.team else None,
        Party.FIRST_LINE: Person(parties.first_line) if parties.first_line else None,
    }
    if entry == Party.WATCHERS:
        return [Person(email) for email in parties.watchers]
    if entry == Party.ADMINS:
        return [Person(email) for email in parties.admins]
    if entry in single:
        person = single[Party(entry)]
        return [person] if person else []
    return [Person(entry)]


def change_notices(
    happenings: Sequence[Happening], parties: Parties, settings: Settings, service: str
) -> list[Notice]:
    """The notices of a mail's events: nobody hears of their own change, each person once."""
    chosen: dict[str, Notice] = {}
    for happening in happenings:
        kind = kind_of(happening, settings, service)
        if kind is None:
            continue
        kept_aside = "reason" in happening.detail  # a mail not applied: its From only claimed
        for recipient in addressed(kind, parties, settings, service):
            if recipient.email == parties.sender.email and not kept_aside:
                continue
            current = chosen.get(recipient.email)
            if current is None or PRECEDENCE.index(kind) < PRECEDENCE.index(current.kind):
                chosen[recipient.email] = Notice(kind, recipient, happening)
    return list(chosen.values())


def direct_notices(
    kind: NoticeKind, parties: Parties, settings: Settings, service: str
) -> list[Notice]:
    """A notice kind sent as such to its recipients: answers, escalations, problem news."""
    return [Notice(kind, r) for r in addressed(kind, parties, settings, service)]


def addressed(
    kind: NoticeKind, parties: Parties, settings: Settings, service: str
) -> list[Recipient]:
    """The configured recipients of a kind; an internal kind (a note) only ever reaches the
    desk's own people, whatever the configuration lists."""
    found = resolve(recipients_of(kind, service, settings), parties, settings.own_addresses)
    if kind in INTERNAL_NOTICES:
        return [r for r in found if settings.is_staff(r.email)]
    return found


def kind_of(happening: Happening, settings: Settings, service: str) -> NoticeKind | None:
    detail = happening.detail
    match happening.kind:
        case EventKind.CREATED:
            return NoticeKind.NEW_INCIDENT
        case EventKind.COMMENT:
            return NoticeKind.COMMENT
        case EventKind.NOTE:
            return NoticeKind.NOTE
        case EventKind.MERGED_INTO:
            return NoticeKind.MERGED
        case EventKind.MERGED:
            return NoticeKind.MERGED_IN
        case EventKind.ASSIGNED:
            return NoticeKind.ASSIGNED if detail.get("to") else None
        case EventKind.MOVED:
            return NoticeKind.MOVED
        case EventKind.PRIORITY:
            return NoticeKind.PRIORITY
        case EventKind.RELATED:
            return NoticeKind.RELATED
        case EventKind.STATUS:
            before = _status(settings, service, str(detail.get("from")))
            after = _status(settings, service, str(detail.get("to")))
            return _status_notice(before, after, str(detail.get("by")))
    return None


def _status_notice(
    before: StatusConfig | None, after: StatusConfig | None, by: str
) -> NoticeKind | None:
    was = before.kind if before else None
    now = after.kind if after else None
    if now is StatusKind.CLOSED and was is not StatusKind.CLOSED:
        return NoticeKind.CLOSED
    if now is StatusKind.RESOLVED and was is not StatusKind.RESOLVED:
        return NoticeKind.RESOLVED
    if now is StatusKind.OPEN and was in (StatusKind.RESOLVED, StatusKind.CLOSED):
        return NoticeKind.REOPENED
    paused_before, paused_after = bool(before and before.paused), bool(after and after.paused)
    if now is StatusKind.OPEN and paused_after and not paused_before:
        return NoticeKind.QUESTION
    if now is StatusKind.OPEN and paused_before and not paused_after and by == "reply":
        return NoticeKind.RESUMED
    return None


def _status(settings: Settings, service: str, name: str) -> StatusConfig | None:
    """A status of the incident's workflow; a move may have left one of another workflow."""
    workflows = [settings.workflow_of(service), *settings.workflows.values()]
    for workflow in workflows:
        for status in workflow.statuses:
            if status.name == name:
                return status
    return None


def wants_transcript(decision: Decision | None, settings: Settings) -> bool:
    """Always when something was refused; on full success as configured."""
    if decision is None or not (decision.refused or decision.applied):
        return False
    return bool(decision.refused) or settings.notifications.transcript_on_success


def transcript(
    commands: Sequence[Command | BadCommand], decision: Decision, language: Language
) -> tuple[CommandLine, ...]:
    refused = {r.command: r.reason for r in decision.refused}
    return tuple(
        CommandLine(
            item.text,
            item.text not in refused,
            refused.get(item.text, ""),
            _syntax(item, language),
            _mended(item, language),
        )
        for item in commands
    )


def _mended(item: Command | BadCommand, language: Language) -> str:
    """A mistyped command word corrected (`[ASIGN sam]` -> `[ASSIGN sam]`), a well-formed
    command as it was written; empty when only the writer knows what was meant."""
    if isinstance(item, Command):
        return item.text
    words = item.text.strip("[]").split()
    guess = language.near_miss(words[0].upper()) if words else None
    return f"[{' '.join([guess, *words[1:]])}]" if guess else ""


def _syntax(item: Command | BadCommand, language: Language) -> str:
    if isinstance(item, Command):
        return SPECS[item.verb].syntax
    words = item.text.strip("[]").split()
    word = words[0].upper() if words else ""
    verb = language.words.get(word) or language.words.get(language.near_miss(word) or "")
    return SPECS[verb].syntax if verb else ""
