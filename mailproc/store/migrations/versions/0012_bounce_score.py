"""undeliverable addresses keep a bounce score instead of one strike

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 04:10:00

Addresses marked by a single permanent bounce before this revision stay suspended, with the
score of one hard bounce: the first probe after `bounces.probe_after_days` tells whether they
work again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailproc.store.db


revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('undeliverable', schema=None) as batch_op:
        batch_op.add_column(sa.Column('score', sa.Float(), nullable=False, server_default='1.0'))
        batch_op.add_column(sa.Column('scored_at', mailproc.store.db.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column('suspended_at', mailproc.store.db.UTCDateTime(), nullable=True)
        )
    op.execute('UPDATE undeliverable SET scored_at = since, suspended_at = since')


def downgrade() -> None:
    with op.batch_alter_table('undeliverable', schema=None) as batch_op:
        batch_op.drop_column('suspended_at')
        batch_op.drop_column('scored_at')
        batch_op.drop_column('score')
