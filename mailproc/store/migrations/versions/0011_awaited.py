"""replies that arrived before the mail they answer wait for it

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 04:00:00

One row per parent a waiting mail names (mailproc.desk.waiting); the mail itself is in
messages with the outcome `waiting`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailproc.store.db


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'awaited',
        sa.Column('message_pk', sa.Integer(), nullable=False),
        sa.Column('parent', sa.String(length=1000), nullable=False),
        sa.Column('until', mailproc.store.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['message_pk'], ['messages.id']),
        sa.PrimaryKeyConstraint('message_pk', 'parent'),
    )
    op.create_index('ix_awaited_parent', 'awaited', ['parent'], unique=False)
    op.create_index(op.f('ix_awaited_until'), 'awaited', ['until'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_awaited_until'), table_name='awaited')
    op.drop_index('ix_awaited_parent', table_name='awaited')
    op.drop_table('awaited')
