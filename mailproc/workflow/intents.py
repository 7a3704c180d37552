"""Turn a parsed mail, and the incident it threads onto (if any), into what the sender means.

Pure: the thread lookup has already happened in the service layer; here the rules of the
process decide between a new incident, a comment (perhaps reopening), a follow-up incident
after the reopen window, or a reply that is kept but not applied.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from mailproc.config.settings import Settings
from mailproc.inbound.parse import InboundMail
from mailproc.inbound.quotes import reply_text
from mailproc.inbound.subject import BadCommand, Command, ParsedSubject
from mailproc.vocabulary import StatusKind, Verb
from mailproc.workflow.decision import Actor, IncidentView, kind_of
from mailproc.workflow.proof import list_tokens, unproven

NO_SUBJECT = "(no subject)"


@dataclass(frozen=True, slots=True)
class NewIncident:
    service: str
    title: str
    text: str
    commands: tuple[Command | BadCommand, ...]
    reporter_name: str = ""
    follow_up_of: int | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    incident: int
    text: str
    commands: tuple[Command | BadCommand, ...]
    accepted: bool  # False: kept with a reason, not applied as a comment
    reopen: bool
    reason: str = ""
    note: bool = False  # the text is an internal note, not a comment to the reporter
    resume: bool = False  # the customer answers a waiting (paused) incident: it goes on


Intent = NewIncident | Reply


def actor_of(mail: InboundMail, settings: Settings) -> Actor:
    email = mail.sender.email if mail.sender else ""
    person = settings.people_by_email.get(email)
    return Actor(email, person[0] if person else None)


def verified_actor(
    mail: InboundMail,
    settings: Settings,
    incident: IncidentView | None,
    merged: tuple[int, ...] = (),
    subject_tag: str = "",
) -> Actor:
    """The sender, with whether their address is proven for commands on `incident`.
    `merged`: duplicates merged into it that the mail answers; their tokens count too (the
    mail was sent to the duplicate's people, who now watch this incident). `subject_tag`: the
    signed tag of the subject's `[INC-n.<tag>]`, if any."""
    actor = actor_of(mail, settings)
    if incident is None:
        return replace(actor, unproven=unproven(mail, settings, None))
    lists = list_tokens(settings, actor.email, incident.service)
    why = unproven(mail, settings, incident.number, lists, subject_tag)
    for number in merged if why else ():
        if unproven(mail, settings, number, lists, subject_tag) is None:
            return actor
    return replace(actor, unproven=why)


def classify(
    mail: InboundMail,
    subject: ParsedSubject,
    found: IncidentView | None,
    participants: frozenset[str],
    settings: Settings,
    now: datetime,
    service_hint: str | None = None,
    team_notice: bool = False,
    unproven_sender: str | None = None,
) -> Intent:
    """`team_notice`: the mail answers one of the notices written for the desk's own people
    (mailproc.vocabulary.TEAM_NOTICES), so a solver's text is an internal note by default.
    `unproven_sender`: why the sender is not proven (mailproc.workflow.proof), if not: a reply
    from such a sender changes nothing and is kept as an internal note with that reason."""
    name = mail.sender.name if mail.sender else ""
    title, text = subject.title or NO_SUBJECT, mail.text.strip()
    if found is None:
        service = service_hint or settings.service_for(_recipients(mail))
        return NewIncident(service, title, text, _no_notes(subject.commands), name)
    kind = kind_of(found, settings)
    window = timedelta(days=settings.reopen_window_days)
    if kind is StatusKind.CLOSED and found.closed_at and now - found.closed_at > window:
        commands = _no_notes(subject.commands)
        return NewIncident(found.service, title, text, commands, name, found.number)
    return _reply(mail, subject, found, participants, settings, kind, team_notice, unproven_sender)


def _no_notes(commands: tuple[Command | BadCommand, ...]) -> tuple[Command | BadCommand, ...]:
    """A new report is never internal: [NOTE] on one is refused (and so, all or nothing, are
    the mail's other commands) rather than silently publishing what was meant as a note."""
    why = "[NOTE] makes a reply to an incident internal; a new report is not a note"
    return tuple(
        BadCommand(c.text, why) if isinstance(c, Command) and c.verb is Verb.NOTE else c
        for c in commands
    )


def is_note(subject: ParsedSubject, by_solver: bool, team_notice: bool) -> bool:
    """[NOTE] makes any sender's text internal (keeping a text private is always safe); a
    solver's answer to a team notice is internal unless it says [PUBLIC] — or [WAIT], which
    asks the reporter something."""
    verbs = {c.verb for c in subject.commands if isinstance(c, Command)}
    if Verb.NOTE in verbs:
        return True
    return by_solver and team_notice and not verbs & {Verb.PUBLIC, Verb.WAIT}


def _reply(
    mail: InboundMail,
    subject: ParsedSubject,
    found: IncidentView,
    participants: frozenset[str],
    settings: Settings,
    kind: StatusKind,
    team_notice: bool = False,
    unproven_sender: str | None = None,
) -> Reply:
    actor = actor_of(mail, settings)
    text = reply_text(mail.text)
    is_solver = actor.person is not None
    is_reporter = actor.email == found.reporter
    is_participant = settings.permissions.participants_may_comment and actor.email in participants
    escalated_to = actor.email in found.escalated_to  # may answer, e.g. with [ACK]
    known = is_solver or is_reporter or is_participant or escalated_to
    accepted = known and unproven_sender is None
    customer = (
        accepted and (is_reporter or is_participant) and not is_solver and not subject.commands
    )
    reopen = customer and kind in (StatusKind.RESOLVED, StatusKind.CLOSED)
    resume = customer and settings.workflow_of(found.service).status(found.status).paused
    reason = ""
    if not known:
        reason = (
            f"{actor.email or 'an unknown sender'} is neither a solver, the reporter nor a "
            f"participant of INC-{found.number}"
        )
    elif unproven_sender is not None:
        reason = unproven_sender
    note = is_note(subject, is_solver, team_notice)
    return Reply(found.number, text, subject.commands, accepted, reopen, reason, note, resume)


def _recipients(mail: InboundMail) -> list[str]:
    delivered = [v.strip().lower() for v in mail.headers.get("delivered-to", ())]
    original = [v.strip().lower() for v in mail.headers.get("x-original-to", ())]
    return delivered + original + [a.email for a in (*mail.to, *mail.cc)]
