"""hardening: message fingerprints, undeliverable addresses, storm breakers, rate-limit indexes

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 12:00:00

Messages stored before this revision have no fingerprint: a later mail with the same
Message-ID counts as their duplicate, as it did before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailproc.store.db


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))
    op.create_index('ix_messages_outcome', 'messages', ['outcome', 'id'], unique=False)
    op.create_index(
        'ix_incidents_reporter_created', 'incidents', ['reporter', 'created_at'], unique=False
    )
    op.create_index(
        'ix_outbox_kind_created', 'outbox', ['kind', 'status', 'created_at'], unique=False
    )
    op.create_index(
        'ix_outbox_recipient_created', 'outbox', ['recipient', 'created_at'], unique=False
    )
    op.create_table('undeliverable',
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('since', mailproc.store.db.UTCDateTime(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=True),
    sa.Column('message_pk', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.ForeignKeyConstraint(['message_pk'], ['messages.id'], ),
    sa.PrimaryKeyConstraint('address')
    )
    op.create_table('breakers',
    sa.Column('scope', sa.String(length=400), nullable=False),
    sa.Column('opened_at', mailproc.store.db.UTCDateTime(), nullable=False),
    sa.Column('closed_at', mailproc.store.db.UTCDateTime(), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('trips', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('scope')
    )


def downgrade() -> None:
    op.drop_table('breakers')
    op.drop_table('undeliverable')
    op.drop_index('ix_outbox_recipient_created', table_name='outbox')
    op.drop_index('ix_outbox_kind_created', table_name='outbox')
    op.drop_index('ix_incidents_reporter_created', table_name='incidents')
    op.drop_index('ix_messages_outcome', table_name='messages')
    # In place (SQLite 3.35+): copying the table, batch mode's way, fails while the events
    # and attachments that reference the messages are there.
    with op.batch_alter_table('messages', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('fingerprint')
