"""incidents.merged_into: a duplicate folded into another incident ([MERGE INC-n])

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            'fk_incidents_merged_into', 'incidents', ['merged_into'], ['id']
        )
        batch_op.create_index('ix_incidents_merged_into', ['merged_into'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index('ix_incidents_merged_into')
        batch_op.drop_constraint('fk_incidents_merged_into', type_='foreignkey')
        batch_op.drop_column('merged_into')
