"""attempts: mails being handled, so a mail that kills the process is quarantined, not retried

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailproc.store.db


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('attempts',
    sa.Column('key', sa.String(length=400), nullable=False),
    sa.Column('tries', sa.Integer(), nullable=False),
    sa.Column('at', mailproc.store.db.UTCDateTime(), nullable=False),
    sa.Column('owner', sa.String(length=300), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade() -> None:
    op.drop_table('attempts')
