"""Escalation storms fold into one mail: when one escalation pass would mail more than
`sla.fold_escalations_above` (5) escalations to the same address, that address gets one mail
listing them all (`escalations`: each incident with its level, target, reason and due time,
and how to acknowledge it by reply: `[ACK INC-n]`), not a flood.

The pass writes each incident's escalation mails as `held` outbox rows, in the incident's
own transaction as before (the sender leaves held rows alone), and counts them per address.
When the pass is done, one transaction lets go of the rows of the addresses within the limit
(pending: the sender takes them) and, for the others, marks the rows suppressed ("folded into
one mail") and queues the one mail. A pass that dies before that leaves held rows behind: the
next pass lets those older than STALE go as they are, so nothing is lost, at worst unfolded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.notify.desk_letters import queue_desk
from mailproc.notify.outbox import Outbox
from mailproc.notify.recipients import Recipient
from mailproc.store import db
from mailproc.vocabulary import NoticeKind

STALE = timedelta(minutes=10)  # held longer than this: its pass died; let it go


@dataclass
class Fold:
    """One pass's escalation mails, by address, until the pass settles them."""

    settings: Settings
    outbox: Outbox
    token: str  # the pass's mark on its held rows
    items: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, going: list[tuple[str, str]], item: dict[str, Any]) -> None:
        """Mails of one escalation (committed), and what the folded mail would say of it."""
        for recipient, message_id in going:
            self.items[recipient].append(item | {"message_id": message_id})

    def settle(self, engine: Engine, now: datetime) -> int:
        """Let the rows go, or fold them; returns how many addresses got one folded mail."""
        limit = self.settings.sla.fold_escalations_above
        folded = 0
        with Session(engine) as session, session.begin():
            for recipient, items in self.items.items():
                ids = [item["message_id"] for item in items]
                if len(items) <= limit:
                    _let_go(session, ids)
                    continue
                why = f"folded into one mail with the pass's {len(items)} escalations to it"
                _mark(session, ids, status=db.SUPPRESSED, error=why)
                payload = {"escalations": {"count": len(items), "items": items}}
                who = Recipient(recipient, "", "address")
                queue_desk(self.outbox, session, NoticeKind.ESCALATIONS, who, payload, now)
                folded += 1
        self.items.clear()
        return folded


def release_stale(engine: Engine, now: datetime) -> None:
    """Held rows of a pass that died: let them go as they are."""
    with Session(engine) as session, session.begin():
        session.execute(
            update(db.Outbox)
            .where(db.Outbox.status == db.HELD, db.Outbox.created_at < now - STALE)
            .values(status=db.PENDING, claim_token=None)
        )


def _let_go(session: Session, ids: list[str]) -> None:
    _mark(session, ids, status=db.PENDING, error=None)


def _mark(session: Session, ids: list[str], **values: Any) -> None:
    session.execute(
        update(db.Outbox)
        .where(db.Outbox.message_id.in_(ids), db.Outbox.status == db.HELD)
        .values(claim_token=None, **values)
    )
