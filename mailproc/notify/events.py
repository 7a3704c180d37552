"""A history event in words, for a notice's list of changes and for `incidents show`: kept
apart from the notices' context so that printing an incident loads no template machinery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def describe_event(kind: str, detail: dict[str, Any]) -> str:
    """One event in words, e.g. "assigned to tina (was nobody)"."""
    describe = _DESCRIBE.get(kind)
    return describe(detail) if describe else f"{kind} {detail}"


_DESCRIBE: dict[str, Callable[[dict[str, Any]], str]] = {
    "created": lambda d: f"opened in {d['service']}: {d['title']}",
    "comment": lambda d: "comment",
    "note": lambda d: (
        f"kept as an internal note: {d['reason']}" if d.get("reason") else "internal note"
    ),
    "assigned": lambda d: f"assigned to {d['to'] or 'nobody'} (was {d['from'] or 'nobody'})",
    "status": lambda d: f"status {d['from']} → {d['to']} ({d['by']})",
    "priority": lambda d: f"priority {d['from']} → {d['to']}",
    "impact": lambda d: f"impact {d['from'] or '-'} → {d['to']}",
    "urgency": lambda d: f"urgency {d['from'] or '-'} → {d['to']}",
    "moved": lambda d: f"moved {d['from']} → {d['to']}",
    "related": lambda d: f"related to PRB-{d['problem']}",
    "command_rejected": lambda d: f"refused {d['command']}: {d['reason']}",
    "reply_not_applied": lambda d: f"reply not applied: {d['reason']}",
    "sender_warning": lambda d: f"warning: {d['warning']}",
    "watchers_not_added": lambda d: (
        f"not made watchers ({d['reason']}): {', '.join(d['addresses'])}"
    ),
    "follow_up": lambda d: f"follow-up opened as INC-{d['incident']}",
    "reminded": lambda d: f"reminded {d['to']} that an answer is awaited",
    "merged_into": lambda d: f"merged into INC-{d['incident']} (a duplicate)",
    "merged": lambda d: (
        f"INC-{d['incident']} merged into this one: {d['title']} (reported by {d['reporter']})"
    ),
    "watcher_added": lambda d: f"watcher {d['email']} added",
    "watcher_removed": lambda d: f"watcher {d['email']} dropped",
    "acknowledged": lambda d: "acknowledged the escalation",
    "escalated": lambda d: (
        f"escalated: {d['target']} level {d['level']} ({d['reason']}) to "
        f"{', '.join(d['to']) or 'nobody (no recipient configured)'}"
    ),
    "automatic_mail": lambda d: f"automatic mail ({d['kind']}: {d['reason']}), not applied",
    "bounced": lambda d: (
        f"{d['notice'] or 'a notification'} to {d['recipient']} bounced: {d['status']} "
        f"{d['diagnostic']}".rstrip()
        + (" (address marked undeliverable)" if d.get("permanent") else " (temporary)")
    ),
    "rate_limited": lambda d: (
        f"not acknowledged: {d['count']} new incidents from {d['sender']} within an hour "
        f"(limit {d['limit']})"
    ),
}
