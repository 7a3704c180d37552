"""Two `mailproc init` at the same moment on one empty database (the unit's ExecStartPre on two
hosts starting together): both succeed, the schema is created once, at the head revision."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import inspect, text

from mailproc.store.db import make_engine
from mailproc.store.schema import head_revision
from tests.support.clirunner import run_together, write_demo_config


@pytest.mark.parametrize("attempt", range(2))
def test_two_inits_at_once_create_the_schema_once(database_url, tmp_path, attempt):
    env = {
        **os.environ,
        "MAILPROC_DATABASE_URL": database_url,
        "MAILPROC_CONFIG": str(write_demo_config(tmp_path)),
    }
    for code, out, err in run_together(["init"], env):
        assert code == 0, err
        assert f"database ready at revision {head_revision()}" in out
    engine = make_engine(database_url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert versions == [(head_revision(),)]
    assert {"incidents", "messages", "outbox"} <= tables
