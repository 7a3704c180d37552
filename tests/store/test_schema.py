"""The schema: the alembic migrations build exactly what the models describe, on SQLite and
PostgreSQL."""

from __future__ import annotations

from mailproc.store import db


def test_the_migrations_build_exactly_the_models(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.Base.metadata) == []
