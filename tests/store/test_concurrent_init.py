"""Two `mailproc init` at the same moment on one empty database (the unit's ExecStartPre on two
hosts starting together): both succeed, the schema is created once, at the head revision."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import inspect, text

from mailproc.store.db import make_engine
from mailproc.store.schema import head_revision
from tests.support.clirunner import write_demo_config

# Imports first, then says it is ready and waits for the word on stdin: both begin together,
# after the slow part of starting Python.
GATED = """
import sys
from mailproc.cli import main
print("ready", flush=True)
sys.stdin.readline()
main(["init"])
"""


@pytest.mark.parametrize("attempt", range(2))
def test_two_inits_at_once_create_the_schema_once(database_url, tmp_path, attempt):
    env = {
        **os.environ,
        "MAILPROC_DATABASE_URL": database_url,
        "MAILPROC_CONFIG": str(write_demo_config(tmp_path)),
    }
    inits = [
        subprocess.Popen(
            [sys.executable, "-c", GATED],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in inits:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for process in inits:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [process.communicate(timeout=120) for process in inits]
    for process, (out, err) in zip(inits, results, strict=True):
        assert process.returncode == 0, err
        assert f"database ready at revision {head_revision()}" in out
    engine = make_engine(database_url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        tables = set(inspect(connection).get_table_names())
    engine.dispose()
    assert versions == [(head_revision(),)]
    assert {"incidents", "messages", "outbox"} <= tables
