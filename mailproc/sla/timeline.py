"""An incident's stored history read as the SLA core's timeline (the facts of mailproc.sla.clocks).

Pure: the history records, oldest first, and the settings go in; the facts come out. The rules:
- `created` gives Created, with the priority the incident was created with (recorded in the
  event; for an event written before that was recorded, the service's default priority).
- `priority` gives PriorityChanged, `moved` gives Moved, and `status` gives StatusChanged with
  what that status means in the workflow of the service the incident is in at that moment.
- `assigned` to someone gives Responded (the response clock stops when it is assigned).
- A real action of a solver of the incident's service, or of an admin — a comment, an internal
  note, an applied command, an [ACK] — gives Acknowledged, and the first one also Responded.
  The mail that opened the incident is not such an action (a monitoring system configured
  as a person opens incidents that still await a response), though an assignment in it is.
- `acknowledged` ([ACK]) from anyone allowed to send it gives Acknowledged.
Refused commands, replies not applied and the escalations themselves are not actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from mailproc.config.settings import Settings
from mailproc.sla.clocks import (
    Acknowledged,
    Created,
    Fact,
    Moved,
    PriorityChanged,
    Responded,
    StatusChanged,
)
from mailproc.times import whole_second
from mailproc.vocabulary import EventKind, Priority, StatusKind


@dataclass(frozen=True, slots=True)
class Record:
    """One stored history event, as much of it as the clocks need."""

    at: datetime
    actor: str
    kind: str
    detail: Mapping[str, Any]
    message: int | None = None  # the incoming mail that caused it, if any


_ACTIONS = frozenset(
    {
        EventKind.COMMENT,
        EventKind.NOTE,
        EventKind.ASSIGNED,
        EventKind.STATUS,
        EventKind.PRIORITY,
        EventKind.IMPACT,
        EventKind.URGENCY,
        EventKind.MOVED,
        EventKind.RELATED,
        EventKind.ACKNOWLEDGED,
    }
)


def timeline(history: Iterable[Record], settings: Settings) -> list[Fact]:
    """The facts of a history; ValueError if it has no `created` event."""
    records = (_whole(r) for r in history)
    first = next((r for r in records if r.kind == EventKind.CREATED), None)
    if first is None:
        raise ValueError("a history starts with its created event")
    service = str(first.detail["service"])
    facts: list[Fact] = [Created(first.at, service, _created_priority(first, settings, service))]
    responded = False
    for record in records:
        acts = record.message != first.message and _by_solver(record, service, settings)
        if acts and not responded:
            facts.append(Responded(record.at, f"first action of {record.actor}"))
            responded = True
        if acts or record.kind == EventKind.ACKNOWLEDGED:
            facts.append(Acknowledged(record.at, record.actor))
        fact = _fact(record, service, settings)
        if isinstance(fact, Responded):
            if responded:
                continue
            responded = True
        if isinstance(fact, Moved):
            service = fact.service
        if fact is not None:
            facts.append(fact)
    return facts


def _whole(record: Record) -> Record:
    """History written before the desk kept whole seconds, read as it would be written now."""
    return replace(record, at=whole_second(record.at)) if record.at.microsecond else record


def _created_priority(created: Record, settings: Settings, service: str) -> Priority:
    recorded = created.detail.get("priority")
    return Priority(recorded) if recorded else settings.services[service].default_priority


def _by_solver(record: Record, service: str, settings: Settings) -> bool:
    if record.kind not in _ACTIONS:
        return False
    if record.kind == EventKind.NOTE and "reason" in record.detail:
        return False  # a mail kept aside, not applied: its From was only claimed
    known = settings.people_by_email.get(record.actor)
    return known is not None and known[1].solves(service)


def _fact(record: Record, service: str, settings: Settings) -> Fact | None:
    detail = record.detail
    match record.kind:
        case EventKind.PRIORITY:
            return PriorityChanged(record.at, Priority(detail["to"]))
        case EventKind.MOVED:
            return Moved(record.at, str(detail["to"]))
        case EventKind.STATUS:
            kind, paused = status_meaning(settings, service, str(detail["to"]))
            return StatusChanged(record.at, str(detail["to"]), kind, paused)
        case EventKind.ASSIGNED if detail.get("to"):
            return Responded(record.at, f"assigned to {detail['to']}")
    return None


def status_meaning(settings: Settings, service: str, name: str) -> tuple[StatusKind, bool]:
    """What a status means to the clocks: its kind and whether it pauses, looked up in the
    service's workflow (then in the others: a history may name a status of an older
    configuration); an unknown status counts as open and running."""
    workflows = [settings.workflow_of(service), *settings.workflows.values()]
    for workflow in workflows:
        for status in workflow.statuses:
            if status.name == name:
                return status.kind, status.paused
    return StatusKind.OPEN, False
