"""attachments: bytes content-addressed in a blobs table, each file once

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00

The bytes of an attachment move out of its row into `blobs`, keyed by their SHA-256: the
same logo in every signature is stored once, and listing an incident's attachments no longer
reads their bytes. They stay in the database (see docs: backups capture them with it).
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 200


def upgrade() -> None:
    op.create_table('blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sha256', sa.String(length=64), nullable=True))
    _move_bytes(op.get_bind())
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.alter_column('sha256', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_foreign_key('fk_attachments_sha256', 'blobs', ['sha256'], ['sha256'])
        batch_op.create_index('ix_attachments_sha256', ['sha256'], unique=False)
        batch_op.drop_column('content')


def _move_bytes(connection: sa.Connection) -> None:
    """Each stored attachment's bytes into `blobs`, a batch at a time (bounded memory)."""
    attachments = sa.table(
        'attachments', sa.column('id'), sa.column('content'), sa.column('sha256')
    )
    blobs = sa.table('blobs', sa.column('sha256'), sa.column('size'), sa.column('content'))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(attachments.c.id, attachments.c.content)
            .where(attachments.c.id > last)
            .order_by(attachments.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            content = bytes(row.content)
            digest = hashlib.sha256(content).hexdigest()
            known = connection.execute(
                sa.select(blobs.c.sha256).where(blobs.c.sha256 == digest)
            ).first()
            if known is None:
                connection.execute(
                    blobs.insert().values(sha256=digest, size=len(content), content=content)
                )
            connection.execute(
                attachments.update().where(attachments.c.id == row.id).values(sha256=digest)
            )
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('content', sa.LargeBinary(), nullable=True))
    connection = op.get_bind()
    connection.execute(sa.text(
        'UPDATE attachments SET content = '
        '(SELECT content FROM blobs WHERE blobs.sha256 = attachments.sha256)'
    ))
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_attachments_sha256')
        batch_op.drop_constraint('fk_attachments_sha256', type_='foreignkey')
        batch_op.drop_column('sha256')
        batch_op.alter_column('content', existing_type=sa.LargeBinary(), nullable=False)
    op.drop_table('blobs')
