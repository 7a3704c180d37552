"""A mail of `[ACK INC-n]` alone — the answer to a folded escalation mail — acknowledges
each incident it names, in the mail's transaction, as an `[ACK]` in a reply about each would.

Each is decided on its own (one refused does not stop the others: they are separate
incidents, not one incident's commands); the sender is proven for each by that incident's
token, or by the desk's own (the folded mail's Reply-To carries it: it went to them), or a
trusted Authentication-Results header. The sender gets one answer listing what became of each.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.desk.writes import Writes, lock_incident, save_incident, view_of
from mailproc.inbound.parse import InboundMail
from mailproc.inbound.subject import Command
from mailproc.notify.desk_letters import DESK, queue_desk
from mailproc.notify.outbox import Outbox
from mailproc.notify.recipients import Recipient
from mailproc.safety import limits
from mailproc.sla.state import SlaBook
from mailproc.vocabulary import NoticeKind, Verb
from mailproc.workflow.decision import decide
from mailproc.workflow.intents import actor_of
from mailproc.workflow.proof import list_tokens, unproven


def acknowledge_each(
    session: Session,
    settings: Settings,
    books: tuple[Outbox, SlaBook],
    mail: InboundMail,
    numbers: tuple[int, ...],
    message: int,
    now: datetime,
    unanswered: str | None = None,
) -> str:
    """Acknowledge each incident; the summary for the log."""
    outbox, book = books
    actor = actor_of(mail, settings)
    sections, done = [], []
    for number in numbers:
        text = f"[ACK INC-{number}]"
        incident = lock_incident(session, number)
        if incident is None:
            sections.append(_section(text, f"unknown incident INC-{number}"))
            continue
        lists = list_tokens(settings, actor.email, incident.service)  # a list got the fold
        why = unproven(mail, settings, DESK, lists) and unproven(mail, settings, number, lists)
        proven = replace(actor, unproven=why or None)
        view = view_of(session, incident)
        command = Command(Verb.ACK, str(number), text)
        decision = decide(view, (command,), proven, settings, frozenset())
        writes = Writes(settings, session, message, proven, now, mail, outbox, book)
        writes.commit_decision(incident, decision)
        writes.keep_sla(incident)
        writes.write()
        save_incident(session, incident)
        reason = decision.refused[0].reason if decision.refused else ""
        sections.append(_section(text, reason))
        done += [] if reason else [text]
    if unanswered is None:
        _answer(session, settings, outbox, mail, actor.email, sections, now)
    asked = " ".join(f"[ACK INC-{n}]" for n in numbers)
    refused = len(numbers) - len(done)
    return f"{asked}: {len(done)} acknowledged" + (f", {refused} refused" if refused else "")


def _section(text: str, refused: str) -> dict[str, Any]:
    title = f"{text} not applied" if refused else f"{text} acknowledged: its next level is not sent"
    return {
        "kind": "done",
        "asked": text,
        "title": title,
        "refused": refused,
        "incidents": [],
        "commands": [],
    }


def _answer(
    session: Session,
    settings: Settings,
    outbox: Outbox,
    mail: InboundMail,
    email: str,
    sections: list[dict[str, Any]],
    now: datetime,
) -> None:
    held, _ = limits.screen(session, settings, [email], now)
    name = mail.sender.name if mail.sender else ""
    asked = " ".join(s["asked"] for s in sections)
    payload = {"query": {"asked": asked, "sections": sections}}
    who = Recipient(email, name, "sender")
    queue_desk(
        outbox,
        session,
        NoticeKind.ANSWER,
        who,
        payload,
        now,
        trigger=mail.message_id,
        held=held.get(email),
    )
