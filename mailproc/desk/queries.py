"""Queries by mail — `[LIST]`, `[LIST service]`, `[MINE]`, `[HELP]`, `[STATUS]` — answered by
return mail in the transaction that records the query; they change nothing.

A mail of queries alone (mailproc.inbound.subject.is_query) comes here instead of becoming an
incident or a comment. Queries are proven like commands (mailproc.workflow.proof): a reply to
any of our mails (a digest's or an answer's token is the desk's own, incident 0), or a
trusted Authentication-Results header; unproven, the answer says how to ask. Automatic mail
is never answered, and answers count against the storm breaker like transcripts. Reporters
see their own incidents, never a note; solvers see their services' queues.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.inbound.parse import InboundMail
from mailproc.inbound.subject import SPECS, Command, ParsedSubject
from mailproc.notify.context import reply_of
from mailproc.notify.desk_letters import DESK, queue_desk
from mailproc.notify.facts import incident_facts
from mailproc.notify.outbox import Outbox
from mailproc.notify.recipients import Recipient
from mailproc.safety import limits
from mailproc.sla.views import SlaLine, open_lines
from mailproc.store import db
from mailproc.vocabulary import NoticeKind, Verb
from mailproc.workflow.intents import actor_of
from mailproc.workflow.proof import list_tokens, unproven

ASKABLE = ("[LIST]", "[LIST service]", "[MINE]", "[HELP]", "[STATUS]")
#: The incidents one section of an answer or a digest lists; the rest are counted, so a mail
#: stays bounded however long the queue is.
LISTED = 100


def listed(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """A section's incidents: at most LISTED, with how many there are and how many are not
    listed."""
    return {"incidents": lines[:LISTED], "count": len(lines), "more": max(0, len(lines) - LISTED)}


def answer_queries(
    session: Session,
    settings: Settings,
    outbox: Outbox,
    mail: InboundMail,
    subject: ParsedSubject,
    found: db.Incident | None,
    now: datetime,
    unanswered: str | None = None,
) -> str:
    """Answer the mail's queries (about `found`, the incident it threads onto, if any);
    the summary for the log. `unanswered`: why the sender gets no answer (a robot)."""
    asked = " ".join(c.text for c in subject.commands)
    actor = actor_of(mail, settings)
    if unanswered:
        return f"{asked} not answered: {unanswered}"
    number = found.id if found is not None else DESK
    lists = list_tokens(settings, actor.email, found.service) if found is not None else ()
    why = unproven(mail, settings, number, lists, subject.proof)
    sections = (
        [_refused(asked, why)]
        if why
        else [
            _answer(session, settings, c, actor.email, found, now)
            for c in subject.commands
            if isinstance(c, Command)
        ]
    )
    held, _ = limits.screen(session, settings, [actor.email], now)
    name = mail.sender.name if mail.sender else ""
    recipient = Recipient(actor.email, name, "sender")
    payload = {"query": {"asked": asked, "sections": sections}}
    queue_desk(
        outbox,
        session,
        NoticeKind.ANSWER,
        recipient,
        payload,
        now,
        trigger=mail.message_id,
        held=held.get(actor.email),
    )
    refused = [s["refused"] for s in sections if s["refused"]]
    return f"{asked} refused: {'; '.join(refused)}" if refused else f"{asked} answered"


def _section(kind: str, title: str, **parts: Any) -> dict[str, Any]:
    empty = {"incidents": [], "count": 0, "more": 0}
    return {"kind": kind, "title": title, "refused": "", "commands": []} | empty | parts


def _refused(asked: str, why: str) -> dict[str, Any]:
    return _section("refused", f"{asked} not answered", refused=why, asked=asked)


def _answer(
    session: Session,
    settings: Settings,
    command: Command,
    email: str,
    found: db.Incident | None,
    now: datetime,
) -> dict[str, Any]:
    person = settings.people_by_email.get(email)
    if command.verb is Verb.HELP:
        return _help(session, settings, email, found)
    if command.verb is Verb.STATUS:
        reported = _lines(session, settings, now, db.Incident.reporter == email)
        return _section("status", f"Your open reports ({len(reported)})", **listed(reported))
    if person is None:
        return _section(
            "refused",
            f"{command.text} not answered",
            refused=f"{command.text} is for the desk's solvers; {email} is not one. "
            "[STATUS] lists your own reports.",
            asked=command.text,
        )
    name, config = person
    if command.verb is Verb.MINE:
        mine = _lines(session, settings, now, db.Incident.assignee == name)
        return _section("mine", f"Assigned to you ({len(mine)})", **listed(mine))
    services = sorted(s for s in settings.services if config.solves(s))
    if command.arg:
        wanted = command.arg.lower()
        if wanted not in settings.services or wanted not in services:
            return _section(
                "refused",
                f"{command.text} not answered",
                refused=f"no service '{command.arg}' of yours; yours: {', '.join(services)}",
                asked=command.text,
            )
        services = [wanted]
    queue = _lines(session, settings, now, db.Incident.service.in_(services))
    title = f"Open incidents of {', '.join(services)} ({len(queue)})"
    return _section("list", title, services=services, **listed(queue))


def _lines(
    session: Session, settings: Settings, now: datetime, where: ColumnElement[bool]
) -> list[dict[str, Any]]:
    return [line_facts(line, settings) for line in open_lines(session, settings, now, where)]


def line_facts(line: SlaLine, settings: Settings) -> dict[str, Any]:
    """An open incident as the answers and digests list it."""
    waiting = settings.workflow_of(line.service).status(line.status).paused
    target, due = (
        ("response", line.response_due)
        if line.response_due is not None  # not responded yet: that clock comes first
        else ("resolution", line.resolution_due)
    )
    desk = [line.service, line.priority, line.status, line.assignee or "unassigned", line.standing]
    plain = f"status {line.status}" + (" (waiting for your answer)" if waiting else "")
    return {
        "summary": " · ".join(desk),
        "target": target if due else "",
        "plain": plain + (f", with {line.assignee}" if line.assignee else ""),
        "ref": line.ref,
        "number": line.number,
        "title": line.title,
        "service": line.service,
        "status": line.status,
        "priority": line.priority,
        "assignee": line.assignee,
        "standing": line.standing,
        "waiting": waiting,
        "due": due,  # an instant; the reader sees it in their zone and language
    }


def _help(
    session: Session, settings: Settings, email: str, found: db.Incident | None
) -> dict[str, Any]:
    staff = settings.is_staff(email)
    queries = list(ASKABLE) if staff else ["[STATUS]", "[HELP]"]
    if found is None:
        verbs: Sequence[Verb] = [v for v in Verb if v not in _QUERY_VERBS] if staff else []
        return _section(
            "help",
            "How to write to the desk",
            commands=[SPECS[v].syntax for v in verbs],
            queries=queries,
            incident=None,
        )
    facts = incident_facts(session, found)
    reply = reply_of(Recipient(email, "", "sender"), facts, settings)
    return _section(
        "help",
        f"What you can do with INC-{found.id} ({found.status})",
        commands=reply["commands"],
        queries=queries,
        incident={"ref": f"INC-{found.id}", "title": found.title, "status": found.status},
        subject=reply["subject"],
    )


_QUERY_VERBS = (Verb.LIST, Verb.MINE, Verb.HELP, Verb.STATUS)
