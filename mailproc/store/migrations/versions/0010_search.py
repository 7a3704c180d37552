"""full-text search over titles, comments and notes: SQLite FTS5, a PostgreSQL GIN index

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 15:00:00

On SQLite a contentless FTS5 table, `events_search`, holds the words of each created,
comment and note event (its rowid is the event's id), filled by a trigger as events are
written and here from those already stored. On PostgreSQL an expression index over the same
words serves `to_tsvector('simple', …) @@ to_tsquery(…)` (mailproc.store.search). Neither
stems: a desk's mail comes in several languages; words match by prefix instead.
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = "('created', 'comment', 'note')"
SQLITE_WORDS = (
    "coalesce(json_extract({row}.detail, '$.title'), '') || ' ' || "
    "coalesce(json_extract({row}.detail, '$.text'), '')"
)
POSTGRES_WORDS = (
    "to_tsvector('simple'::regconfig, coalesce(detail ->> 'title', '') || ' ' || "
    "coalesce(detail ->> 'text', ''))"
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
        "words, content='', tokenize='unicode61 remove_diacritics 2')"
    )
    op.execute(
        f"CREATE TRIGGER events_search_insert AFTER INSERT ON events "
        f"WHEN new.kind IN {KINDS} BEGIN "
        f"INSERT INTO events_search(rowid, words) VALUES (new.id, {SQLITE_WORDS.format(row='new')}); "
        f"END"
    )
    op.execute(
        f"INSERT INTO events_search(rowid, words) SELECT id, {SQLITE_WORDS.format(row='events')} "
        f"FROM events WHERE kind IN {KINDS}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_events_search")
        return
    op.execute("DROP TRIGGER events_search_insert")
    op.execute("DROP TABLE events_search")
