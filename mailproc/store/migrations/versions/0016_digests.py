"""digests: one row per digest recipient and scheduled moment (sent at most once)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailproc.store.db


revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('digests',
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('slot', mailproc.store.db.UTCDateTime(), nullable=False),
    sa.Column('incidents', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('recipient', 'slot')
    )


def downgrade() -> None:
    op.drop_table('digests')
