"""SLA state: impact and urgency, stored due times, escalations sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 12:00:00

Incidents that exist before this revision have no stored due times yet: `mailproc sla
recompute` fills them in from their histories (the migration cannot, it has no configuration).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import mailproc.store.db


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DUE = ('response_due', 'resolution_due', 'at_risk_at', 'next_escalation_at')


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('impact', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('urgency', sa.String(length=32), nullable=True))
        for name in _DUE:
            batch_op.add_column(sa.Column(name, mailproc.store.db.UTCDateTime(), nullable=True))
        batch_op.create_index(
            batch_op.f('ix_incidents_next_escalation_at'), ['next_escalation_at'], unique=False
        )
    op.create_table('escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=16), nullable=False),
    sa.Column('cycle', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('at', mailproc.store.db.UTCDateTime(), nullable=False),
    sa.Column('due_at', mailproc.store.db.UTCDateTime(), nullable=False),
    sa.Column('recipients', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'target', 'cycle', 'level', name='uq_escalations_level')
    )


def downgrade() -> None:
    op.drop_table('escalations')
    # Dropping columns in place (SQLite 3.35+): copying the table, batch mode's way, fails
    # while the events and messages that reference the incidents are there.
    with op.batch_alter_table('incidents', schema=None, recreate='never') as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_next_escalation_at'))
        for name in reversed(_DUE):
            batch_op.drop_column(name)
        batch_op.drop_column('urgency')
        batch_op.drop_column('impact')
