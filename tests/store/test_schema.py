"""The schema: the alembic migrations build exactly what the models describe, on SQLite and
PostgreSQL; the check every command makes, without alembic, gives the answers alembic gives."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from mailproc.store import db
from mailproc.store.db import make_engine
from mailproc.store.schema import (
    SchemaOutdated,
    _config,
    check_current,
    current_revision,
    head_revision,
    upgrade,
)


def test_the_migrations_build_exactly_the_models(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    def ours(name, kind, parent):  # the full-text search's own (migration 0014)
        return not (name or "").startswith(("events_search", "ix_events_search"))

    with engine.connect() as connection:
        options = {"compare_type": True, "include_name": ours}
        context = MigrationContext.configure(connection, opts=options)
        assert compare_metadata(context, db.Base.metadata) == []


def test_head_revision_read_from_the_files_is_alembics_head():
    assert head_revision() == ScriptDirectory.from_config(_config()).get_current_head()


def test_an_empty_database_is_outdated_and_an_upgraded_one_current(database_url):
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        with pytest.raises(SchemaOutdated, match=r"none \(empty\).*mailproc init"):
            check_current(engine)
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        check_current(engine)
    finally:
        engine.dispose()
