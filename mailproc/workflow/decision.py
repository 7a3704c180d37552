"""Decide what a mail's commands do to an incident, from the per-service transition tables.

Pure: the incident as it stands, the commands, who sent them and the deployment's settings go
in; the incident as it should become, the history events and the refusals come out. Commands
apply in order, each seeing the effect of the one before, and all or nothing: one refusal and
none of them is applied, so a solver never has to guess which half of a mail took effect.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mailproc.config.settings import Settings, WorkflowConfig
from mailproc.inbound.subject import MARKERS, BadCommand, Command
from mailproc.vocabulary import EventKind, Priority, Role, StatusKind, Verb


@dataclass(frozen=True, slots=True)
class IncidentView:
    number: int
    service: str
    status: str
    priority: Priority
    assignee: str | None
    reporter: str
    problems: frozenset[int] = frozenset()
    closed_at: datetime | None = None
    impact: str | None = None  # None: the priority matrix's default_impact
    urgency: str | None = None
    escalated_to: frozenset[str] = frozenset()  # addresses an SLA escalation was mailed to
    watchers: frozenset[str] = frozenset()  # the participants: To/Cc of its mails, [CC +…]


@dataclass(frozen=True, slots=True)
class Brief:
    """Another incident a command names ([MERGE INC-n]): as much as the decision needs."""

    number: int
    status: str
    kind: StatusKind
    chain: tuple[int, ...] = ()  # the incidents it is merged into, nearest first


@dataclass(frozen=True, slots=True)
class Actor:
    """The sender of a mail, and the configured person behind that address if any.

    `unproven` says why the address is not authenticated (mailproc.workflow.proof); then every
    command is refused, whatever the sender's rights. None: the shell vouches for it.
    """

    email: str
    person: str | None = None
    unproven: str | None = None
    trusted: bool = False  # the administrators' command line: may do what an admin may


@dataclass(frozen=True, slots=True)
class Happening:
    """An event for the incident's history, before it is a row."""

    kind: EventKind
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Refusal:
    command: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decision:
    view: IncidentView
    events: tuple[Happening, ...] = ()
    refused: tuple[Refusal, ...] = ()
    applied: tuple[str, ...] = ()


NOT_APPLIED = "not applied, because another command in the same mail was refused"


def decide(
    view: IncidentView,
    commands: Iterable[Command | BadCommand],
    actor: Actor,
    settings: Settings,
    problems: frozenset[int],
    incidents: Mapping[int, Brief] | None = None,
) -> Decision:
    """`problems`: the known problem numbers among those the commands name; `incidents`:
    the incidents they name, as they stand (absent: no such incident)."""
    current, events, refused, applied = view, [], [], []
    for item in commands:
        if isinstance(item, BadCommand):
            refused.append(Refusal(item.text, item.reason))
            continue
        if item.verb in MARKERS:  # says what the text is; the intent has read it
            continue
        outcome = _apply(current, item, actor, settings, problems, incidents or {})
        if isinstance(outcome, Refusal):
            refused.append(outcome)
            continue
        current, new_events = outcome
        events.extend(new_events)
        applied.append(item.text)
    if not refused:
        return Decision(current, tuple(events), (), tuple(applied))
    refused += [Refusal(text, NOT_APPLIED) for text in applied]
    rejections = tuple(
        Happening(EventKind.COMMAND_REJECTED, {"command": r.command, "reason": r.reason})
        for r in refused
    )
    return Decision(view, rejections, tuple(refused), ())


def reopen_by_reply(view: IncidentView, settings: Settings) -> Decision:
    """A reporter's or participant's reply reopens a resolved or closed incident, if the table lets
    REOPEN leave that status; permissions do not apply, because this is the process's own rule."""
    workflow = settings.workflow_of(view.service)
    target = workflow.transitions.get(Verb.REOPEN, {}).get(view.status)
    if target is None:
        return Decision(view)
    return _move_to(view, _reopen_target(view, workflow, target), "reply")


def resume_by_reply(view: IncidentView, settings: Settings, before: str | None) -> Decision:
    """The reporter's answer ends a wait: a paused status is left for the status the
    incident was in before (`before`, from its history), else the workflow's first; the
    process's own rule, needing no transition entry, like a reopen by reply."""
    workflow = settings.workflow_of(view.service)
    if not workflow.status(view.status).paused:
        return Decision(view)
    names = {s.name for s in workflow.statuses if not s.paused and s.kind is StatusKind.OPEN}
    target = before if before in names else workflow.initial
    return _move_to(view, _reopen_target(view, workflow, target), "reply")


def close_by_timeout(view: IncidentView, settings: Settings) -> Decision:
    workflow = settings.workflow_of(view.service)
    target = workflow.transitions.get(Verb.CLOSE, {}).get(view.status)
    return Decision(view) if target is None else _move_to(view, target, "timeout")


def kind_of(view: IncidentView, settings: Settings) -> StatusKind:
    return settings.workflow_of(view.service).status(view.status).kind


def _apply(
    view: IncidentView,
    cmd: Command,
    actor: Actor,
    settings: Settings,
    problems: frozenset[int],
    incidents: Mapping[int, Brief],
) -> tuple[IncidentView, list[Happening]] | Refusal:
    denied = _permission(view, cmd, actor, settings) or actor.unproven
    if denied:
        return Refusal(cmd.text, denied)
    if cmd.verb is Verb.ACK:
        return _acknowledge(view, cmd, settings)
    if cmd.verb is Verb.CC:
        return _watch(view, cmd, settings)
    workflow = settings.workflow_of(view.service)
    verb = Verb.CLOSE if cmd.verb is Verb.MERGE else cmd.verb  # a duplicate closes as CLOSE does
    table = workflow.transitions.get(verb)
    if table is None:
        return Refusal(cmd.text, f"{verb} is not used in workflow '{_wf(view, settings)}'")
    target = table.get(view.status)
    if target is None:
        allowed = ", ".join(table) or "no status"
        closes = " (it closes the incident as CLOSE does)" if verb is not cmd.verb else ""
        return Refusal(
            cmd.text,
            f"{cmd.verb} is not allowed in status {view.status}{closes} (allowed in: {allowed})",
        )
    if cmd.verb is Verb.MERGE:
        return _merge(view, cmd, incidents, target)
    handler = _HANDLERS[cmd.verb]
    return handler(view, cmd, actor, settings, problems, target)


def _permission(view: IncidentView, cmd: Command, actor: Actor, settings: Settings) -> str | None:
    person = settings.people.get(actor.person) if actor.person else None
    if actor.trusted or (person is not None and person.solves(view.service)):
        return None
    if cmd.verb is Verb.ACK and actor.email in view.escalated_to:
        return None
    if actor.email == view.reporter and cmd.verb in settings.permissions.reporter_commands:
        return None
    solvers = ", ".join(_solvers(view.service, settings)) or "none configured"
    if actor.email == view.reporter:
        allowed = ", ".join(settings.permissions.reporter_commands) or "no commands"
        return (
            f"as the reporter you may use {allowed}; {cmd.verb} is for the solvers of "
            f"service {view.service}: {solvers}"
        )
    return f"{actor.email} may not use {cmd.verb}; solvers of service {view.service}: {solvers}"


def _solvers(service: str, settings: Settings) -> list[str]:
    return sorted(
        n for n, p in settings.people.items() if p.role is Role.SOLVER and p.solves(service)
    )


def _wf(view: IncidentView, settings: Settings) -> str:
    return settings.services[view.service].workflow


def _move_to(view: IncidentView, status: str, verb: str) -> Decision:
    if status == view.status:
        return Decision(view)
    event = Happening(EventKind.STATUS, {"from": view.status, "to": status, "by": verb})
    return Decision(replace(view, status=status), (event,))


def _status_events(before: IncidentView, after: IncidentView, verb: Verb) -> list[Happening]:
    if before.status == after.status:
        return []
    return [
        Happening(EventKind.STATUS, {"from": before.status, "to": after.status, "by": verb.value})
    ]


def _reopen_target(view: IncidentView, workflow: WorkflowConfig, target: str) -> str:
    """Reopening into a working status with nobody assigned would strand the incident."""
    return target if view.assignee else workflow.initial


# What one command does: the view after it and what happened, or why it was refused.
CommandEffect = tuple[IncidentView, list[Happening]] | Refusal


def _assign(
    view: IncidentView, cmd: Command, actor: Actor, settings: Settings, _p: Any, target: str
) -> CommandEffect:
    name = _person_named(cmd.arg, settings) if cmd.arg else actor.person
    if name is None:
        if cmd.arg is None:
            return Refusal(cmd.text, "[ASSIGN] without a name assigns the sender, not a solver")
        return Refusal(cmd.text, _unknown_person(cmd.arg, view.service, settings))
    if not settings.people[name].solves(view.service):
        solvers = ", ".join(_solvers(view.service, settings))
        return Refusal(
            cmd.text, f"{name} does not solve service {view.service}. Solvers: {solvers}"
        )
    after = replace(view, assignee=name, status=target)
    events = _status_events(view, after, cmd.verb)
    if view.assignee != name:
        events.insert(0, Happening(EventKind.ASSIGNED, {"from": view.assignee, "to": name}))
    return after, events


def _person_named(arg: str, settings: Settings) -> str | None:
    wanted = arg.lower()
    for name, person in settings.people.items():
        if wanted in (name.lower(), person.email):
            return name
    return None


def _unknown_person(arg: str, service: str, settings: Settings) -> str:
    solvers = _solvers(service, settings)
    guess = difflib.get_close_matches(arg.lower(), list(settings.people), n=1, cutoff=0.6)
    hint = f" — did you mean '{guess[0]}'?" if guess else ""
    return f"unknown person '{arg}'{hint} Solvers of service {service}: {', '.join(solvers)}"


def _set_status(
    view: IncidentView, cmd: Command, _a: Actor, settings: Settings, _p: Any, target: str
) -> CommandEffect:
    if cmd.verb is Verb.REOPEN:
        target = _reopen_target(view, settings.workflow_of(view.service), target)
    after = replace(view, status=target)
    return after, _status_events(view, after, cmd.verb)


def _priority(
    view: IncidentView, cmd: Command, _a: Actor, _s: Settings, _p: Any, target: str
) -> CommandEffect:
    priority = Priority(cmd.arg or view.priority)
    after = replace(view, priority=priority, status=target)
    events = (
        []
        if priority == view.priority
        else [Happening(EventKind.PRIORITY, {"from": view.priority.value, "to": priority.value})]
    )
    return after, events + _status_events(view, after, cmd.verb)


def _impact_urgency(
    view: IncidentView, cmd: Command, _a: Actor, settings: Settings, _p: Any, target: str
) -> CommandEffect:
    """[IMPACT …] and [URGENCY …] set one input of the matrix; the matrix then sets the
    priority (the missing input counts as its default). The last command wins, so a later
    [PRIORITY …] overrides the matrix and a later [IMPACT …] overrides that."""
    if cmd.verb is Verb.IMPACT:
        old, kind, after = view.impact, EventKind.IMPACT, replace(view, impact=cmd.arg)
    else:
        old, kind, after = view.urgency, EventKind.URGENCY, replace(view, urgency=cmd.arg)
    new = cmd.arg
    priority = settings.priority_matrix.priority(after.impact, after.urgency)
    after = replace(after, priority=priority, status=target)
    events = [] if old == new else [Happening(kind, {"from": old, "to": new})]
    if priority != view.priority:
        detail = {"from": view.priority.value, "to": priority.value, "by": "matrix"}
        events.append(Happening(EventKind.PRIORITY, detail))
    return after, events + _status_events(view, after, cmd.verb)


def _acknowledge(view: IncidentView, cmd: Command, settings: Settings) -> CommandEffect:
    """[ACK] changes no status, so it needs no transition entry: it is accepted in every open
    status (an open incident may be escalated in any of them, a paused one included) and
    refused where nothing escalates. Its event is what stops the ladders (mailproc.sla.timeline)."""
    if cmd.arg is not None and int(cmd.arg) != view.number:
        return Refusal(
            cmd.text,
            f"{cmd.text} names another incident than this mail's INC-{view.number}: "
            "acknowledge it in a mail of acknowledgments alone",
        )
    kind = kind_of(view, settings)
    if kind is not StatusKind.OPEN:
        return Refusal(
            cmd.text,
            f"nothing to acknowledge: INC-{view.number} is {view.status} ({kind}) "
            "and a resolved or closed incident is never escalated",
        )
    return view, [Happening(EventKind.ACKNOWLEDGED, {})]


def _merge(
    view: IncidentView, cmd: Command, incidents: Mapping[int, Brief], target: str
) -> CommandEffect:
    """[MERGE INC-n]: this incident is a duplicate of INC-n. It closes (as CLOSE would), and
    the Desk folds its texts, watchers, files and mail threading into INC-n."""
    number = int(cmd.arg or 0)
    into = incidents.get(number)
    if number == view.number:
        return Refusal(cmd.text, f"INC-{number} cannot be merged into itself")
    if into is None:
        return Refusal(cmd.text, f"unknown incident INC-{number}")
    if into.kind is StatusKind.CLOSED:
        return Refusal(
            cmd.text,
            f"INC-{number} is {into.status} (closed): merge into an open incident, "
            f"or reopen INC-{number} first",
        )
    if view.number in into.chain:
        path = " → ".join(
            f"INC-{n}" for n in (number, *into.chain[: into.chain.index(view.number) + 1])
        )
        return Refusal(
            cmd.text, f"INC-{number} is itself merged into this one ({path}): that is a cycle"
        )
    after = replace(view, status=target)
    merged = Happening(EventKind.MERGED_INTO, {"incident": number})
    return after, [merged, *_status_events(view, after, cmd.verb)]


def _watch(view: IncidentView, cmd: Command, settings: Settings) -> CommandEffect:
    """[CC +address] adds a watcher (told of comments like any participant), [CC -address]
    drops one; several at once. It changes no status, so it needs no transition entry."""
    watchers, events = set(view.watchers), []
    for word in (cmd.arg or "").split():
        sign, email = word[0], word[1:]
        if settings.is_own(email):
            return Refusal(cmd.text, f"{email} is the desk's own address, never a watcher")
        if sign == "+" and email not in watchers and email != view.reporter:
            watchers.add(email)
            events.append(Happening(EventKind.WATCHER_ADDED, {"email": email}))
        elif sign == "-":
            if email not in watchers:
                have = ", ".join(sorted(watchers)) or "none"
                return Refusal(
                    cmd.text, f"{email} is not a watcher of INC-{view.number} (watchers: {have})"
                )
            watchers.discard(email)
            events.append(Happening(EventKind.WATCHER_REMOVED, {"email": email}))
    return replace(view, watchers=frozenset(watchers)), events


def _move(
    view: IncidentView, cmd: Command, _a: Actor, settings: Settings, _p: Any, target: str
) -> CommandEffect:
    service = (cmd.arg or "").lower()
    if service not in settings.services:
        guess = difflib.get_close_matches(service, list(settings.services), n=1, cutoff=0.6)
        hint = f" — did you mean '{guess[0]}'?" if guess else ""
        names = ", ".join(sorted(settings.services))
        return Refusal(cmd.text, f"unknown service '{cmd.arg}'{hint} Services: {names}")
    if service == view.service:
        return view, []
    workflow = settings.workflow_of(service)
    assignee = view.assignee
    status = target if any(s.name == target for s in workflow.statuses) else workflow.initial
    if assignee is not None and not settings.people[assignee].solves(service):
        assignee, status = None, workflow.initial
    after = replace(view, service=service, status=status, assignee=assignee)
    events = [Happening(EventKind.MOVED, {"from": view.service, "to": service})]
    if assignee != view.assignee:
        events.append(Happening(EventKind.ASSIGNED, {"from": view.assignee, "to": None}))
    return after, events + _status_events(view, after, cmd.verb)


def _relate(
    view: IncidentView, cmd: Command, _a: Actor, _s: Settings, problems: frozenset[int], target: str
) -> CommandEffect:
    number = int(cmd.arg or 0)
    if number not in problems:
        return Refusal(cmd.text, f"unknown problem PRB-{number}")
    if number in view.problems:
        return view, []
    after = replace(view, problems=view.problems | {number}, status=target)
    related = Happening(EventKind.RELATED, {"problem": number})
    return after, [related, *_status_events(view, after, cmd.verb)]


_HANDLERS = {
    Verb.ASSIGN: _assign,
    Verb.CLOSE: _set_status,
    Verb.RESOLVE: _set_status,
    Verb.REOPEN: _set_status,
    Verb.WAIT: _set_status,
    Verb.PRIORITY: _priority,
    Verb.MOVE: _move,
    Verb.RELATE: _relate,
    Verb.IMPACT: _impact_urgency,
    Verb.URGENCY: _impact_urgency,
}
