"""Human-readable text for incidents, histories and problems, as the CLI and the demo print it."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from datetime import datetime

from mailproc.desk.problems import ProblemView
from mailproc.notify.enclosures import size_text
from mailproc.notify.events import describe_event
from mailproc.store.queries import (
    AttachmentView,
    EventView,
    IncidentDetail,
    IncidentSummary,
    NotificationView,
)
from mailproc.store.search import Hit


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def incident_table(incidents: Iterable[IncidentSummary]) -> str:
    lines = [f"{'REF':<9} {'SERVICE':<10} {'STATUS':<10} {'PRIO':<4} {'ASSIGNEE':<10} TITLE"]
    for i in incidents:
        lines.append(
            f"{i.ref:<9} {i.service:<10} {i.status:<10} {i.priority:<4} "
            f"{i.assignee or '-':<10} {i.title}"
        )
    return "\n".join(lines)


def incident_detail(detail: IncidentDetail) -> str:
    i = detail.incident
    head = [
        f"{i.ref}  {i.title}",
        f"  service {i.service} · status {i.status} · priority {i.priority} · "
        f"assignee {i.assignee or '-'}",
        f"  reporter {i.reporter} · opened {when(i.created_at)} · updated {when(i.updated_at)}"
        + (f" · closed {when(i.closed_at)}" if i.closed_at else ""),
    ]
    if detail.problems:
        head.append("  related " + ", ".join(f"PRB-{n}" for n in detail.problems))
    if detail.follow_up_of:
        head.append(f"  follow-up of INC-{detail.follow_up_of}")
    if detail.merged_into:
        head.append(f"  merged into INC-{detail.merged_into} (a duplicate; its mail goes there)")
    if detail.merged:
        head.append("  duplicates merged into it: " + ", ".join(f"INC-{n}" for n in detail.merged))
    if detail.attachments:
        head.append("  attachments:")
        head += [attachment_line(a) for a in detail.attachments]
    head.append("  history:")
    lines = head + [event_line(e) for e in detail.events]
    if detail.notifications:
        lines.append("  notifications:")
        lines += [notification_line(n) for n in detail.notifications]
    return "\n".join(lines)


def attachment_line(a: AttachmentView) -> str:
    """E.g. "    2  error.log  text/plain  1.2 KiB  from alice@example.org 2026-11-23 09:00"."""
    mark = "  (internal note)" if a.internal else ""
    return (
        f"    {a.number:>2}  {a.filename or '(no name)'}  {a.content_type}  "
        f"{size_text(a.size)}  from {a.sender} {when(a.received_at)}{mark}"
    )


def notification_line(n: NotificationView) -> str:
    """E.g. "acknowledgment → alice@example.org: failed: 550 5.1.1 Mailbox unavailable"."""
    if n.status == "sent":
        fate = f"sent {when(n.sent_at)}"
    elif n.status == "failed":
        fate = f"failed: {n.error}"
    elif n.status == "suppressed":
        fate = f"suppressed: {n.error}"
    elif n.attempts:
        fate = f"pending, {n.attempts} attempt(s), last: {n.error}"
    else:
        fate = "pending"
    return f"    {when(n.created_at)}  {n.kind} → {n.recipient}: {fate}"


def event_line(event: EventView) -> str:
    text = describe_event(event.kind, event.detail)
    body = event.detail.get("text")
    line = f"    {when(event.at)}  {event.actor or '-'}: {text}"
    if body and event.kind in ("created", "comment", "note"):
        line += "\n" + textwrap.indent(_shorten(str(body)), "        | ")
    for copied in event.detail.get("texts", ()) if event.kind == "merged" else ():
        said = f"{copied['actor']} ({copied['kind']}):\n{_shorten(str(copied['text']))}"
        line += "\n" + textwrap.indent(said, "        | ")
    return line


def _shorten(text: str, lines: int = 8) -> str:
    kept = text.splitlines()
    return "\n".join(kept[:lines] + (["…"] if len(kept) > lines else []))


def search_hit(hit: Hit) -> str:
    """An incident found by `incidents search`, with where its words were."""
    lines = [f"{hit.ref:<9} {hit.service:<10} {hit.status:<10} {hit.title}"]
    for match in hit.matches:
        where = f"{match.kind}, internal" if match.kind == "note" else match.kind
        lines.append(f"    {when(match.at)}  {match.actor} ({where}): {match.excerpt}")
    return "\n".join(lines)


def problem_table(problems: Iterable[ProblemView]) -> str:
    lines = [f"{'REF':<9} {'STATUS':<12} {'INCIDENTS':<9} TITLE"]
    for p in problems:
        lines.append(f"{p.ref:<9} {p.status.value:<12} {len(p.incidents):<9} {p.title}")
    return "\n".join(lines)


def problem_detail(p: ProblemView) -> str:
    related = ", ".join(f"INC-{n}" for n in p.incidents) or "none"
    return "\n".join(
        [
            f"{p.ref}  {p.title}",
            f"  status {p.status.value} · opened {when(p.created_at)} · "
            f"updated {when(p.updated_at)}",
            "  symptoms:",
            textwrap.indent(p.symptoms or "-", "    "),
            "  workaround:",
            textwrap.indent(p.workaround or "-", "    "),
            f"  related incidents: {related}",
        ]
    )
