"""outbox rows keep the rendered letter; the sender composes the MIME bytes

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-26 21:00:00

Composing a MIME message costs more than rendering its templates, and nothing about it needs
the transaction that applies an incoming mail. Queued rows from before this revision still
hold bytes; they are parsed back into letters so nothing pending is lost.
"""

from collections.abc import Sequence
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer),
    sa.column("raw", sa.LargeBinary),
    sa.column("letter", sa.JSON),
)


def _ids(msg: EmailMessage, name: str) -> list[str]:
    return [i.strip("<>") for i in str(msg.get(name, "")).split()]


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n")


def _letter(raw: bytes) -> dict[str, Any] | None:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    body = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    if not raw or body is None:
        return None
    in_reply_to = _ids(msg, "In-Reply-To")
    return {
        "subject": str(msg["Subject"]),
        "text": _lines(body.get_content()),
        "html": _lines(html.get_content()) if html is not None else None,
        "from_name": msg["From"].addresses[0].display_name,
        "from_address": msg["From"].addresses[0].addr_spec,
        "to_name": msg["To"].addresses[0].display_name,
        "to_address": msg["To"].addresses[0].addr_spec,
        "reply_to": msg["Reply-To"].addresses[0].addr_spec,
        "message_id": str(msg["Message-ID"]).strip("<>"),
        "in_reply_to": in_reply_to[0] if in_reply_to else None,
        "references": _ids(msg, "References"),
        "auto_submitted": str(msg["Auto-Submitted"]),
        "date": parsedate_to_datetime(str(msg["Date"])).isoformat(),
    }


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("letter", sa.JSON(), nullable=True))
    connection = op.get_bind()
    for row in connection.execute(sa.select(_outbox.c.id, _outbox.c.raw)).all():
        letter = _letter(row.raw)
        connection.execute(
            _outbox.update().where(_outbox.c.id == row.id).values(letter=letter)
        )
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("raw")


def downgrade() -> None:
    from mailproc.notify.letter import compose, letter_from_json

    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("raw", sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    for row in connection.execute(sa.select(_outbox.c.id, _outbox.c.letter)).all():
        raw = compose(letter_from_json(row.letter)) if row.letter else b""
        connection.execute(_outbox.update().where(_outbox.c.id == row.id).values(raw=raw))
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("letter")
        batch.alter_column("raw", nullable=False)
