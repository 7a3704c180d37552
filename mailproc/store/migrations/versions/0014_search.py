"""full-text search over titles, comments and notes: SQLite FTS5, a PostgreSQL GIN index

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 15:00:00

On SQLite an FTS5 table, `events_search`, holds the words of each created, comment and note
event with its incident, kind, author and time; the Desk writes its row with the event's
(mailproc.store.db.Rows) and here it is filled from the events already stored. On PostgreSQL
an expression index over the same words serves `to_tsvector('simple', …) @@ to_tsquery(…)`
(mailproc.store.search). Neither stems: a desk's mail comes in several languages; words match
by prefix instead. The first 10,000 characters of each text are indexed: a mail's text may be
megabytes (PostgreSQL refuses a tsvector over 1 MB), and the index must cost a bounded amount
per mail.
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "('created', 'comment', 'note')"
POSTGRES_WORDS = (
    "to_tsvector('simple'::regconfig, left(coalesce(detail ->> 'title', '') || ' ' || "
    "coalesce(detail ->> 'text', ''), 10000))"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE INDEX ix_events_search ON events USING gin ({POSTGRES_WORDS}) "
            f"WHERE kind IN {KINDS}"
        )
        return
    op.execute(
        "CREATE VIRTUAL TABLE events_search USING fts5("
        "words, incident_id UNINDEXED, kind UNINDEXED, actor UNINDEXED, at UNINDEXED, "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    op.execute(
        "INSERT INTO events_search(words, incident_id, kind, actor, at) SELECT "
        "substr(trim(coalesce(json_extract(detail, '$.title'), '') || ' ' || "
        "coalesce(json_extract(detail, '$.text'), '')), 1, 10000), incident_id, kind, actor, at "
        f"FROM events WHERE kind IN {KINDS} ORDER BY id"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_events_search")
        return
    op.execute("DROP TABLE events_search")
