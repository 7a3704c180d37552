"""outbox leases name their holder (host, pid, start time)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 03:30:00

A sender that finds a lease of a process of its own machine that is gone takes it back at
once (mailproc.runtime.holder). Rows leased before this revision have no holder: their leases
run out as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
