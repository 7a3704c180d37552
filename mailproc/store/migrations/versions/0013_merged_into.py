"""incidents.merged_into: a duplicate folded into another incident ([MERGE INC-n])

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 14:00:00

On SQLite the column is added in place (ALTER TABLE … ADD COLUMN … REFERENCES): a batch
migration would copy the incidents table, and dropping the old copy fails while other tables'
rows refer to it (foreign keys are on). For the same reason a downgrade on SQLite keeps the
column (empty, unknown to the older code) and drops only its index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE incidents ADD COLUMN merged_into INTEGER REFERENCES incidents (id)")
    else:
        op.add_column('incidents', sa.Column('merged_into', sa.Integer(), nullable=True))
        op.create_foreign_key(
            'fk_incidents_merged_into', 'incidents', 'incidents', ['merged_into'], ['id']
        )
    op.create_index('ix_incidents_merged_into', 'incidents', ['merged_into'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_incidents_merged_into', table_name='incidents')
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint('fk_incidents_merged_into', 'incidents', type_='foreignkey')
        op.drop_column('incidents', 'merged_into')
