"""Two `mailproc escalate --once` processes started at the same moment on one database with
many due incidents never send the same escalation twice (row locks with SKIP LOCKED on
PostgreSQL, the write lock on SQLite, and the unique escalation row under both)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.config.settings import load_settings
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition
from mailproc.store import db
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.desk import FakeClock
from tests.support.mailfactory import make_mail

INCIDENTS = 40
LEVELS = 6  # network (24x7), P3, ten days old: three levels of each target are due

# Imports first, then says it is ready and waits for the word on stdin: both passes begin
# together, after the slow part of starting Python.
GATED = """
import sys
from mailproc.cli import main
print("ready", flush=True)
sys.stdin.readline()
main(["--log-level", "WARNING", "escalate", "--once"])
"""


def test_two_passes_at_once_send_each_escalation_once(database_url, tmp_path):
    engine = make_engine(database_url)
    upgrade(engine)
    settings = load_settings(environ={"MAILPROC_DATABASE_URL": database_url})
    desk = Desk(settings, engine, FakeClock(datetime.now(UTC) - timedelta(days=10)))
    for n in range(INCIDENTS):
        raw = make_mail(to="network-support@example.com", subject=f"Switch {n} down")
        assert desk.handle(raw).disposition is Disposition.PROCESSED
    env = {**os.environ, "MAILPROC_DATABASE_URL": database_url, "MAILPROC_SECRET": "s3cret"}
    env.pop("MAILPROC_CONFIG", None)
    passes = [
        subprocess.Popen(
            [sys.executable, "-c", GATED],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in passes:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for process in passes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [process.communicate(timeout=120) for process in passes]
    assert [p.returncode for p in passes] == [0, 0], results
    counts = [int(out.split()[1]) for out, _err in results]
    assert sum(counts) == INCIDENTS * LEVELS, results
    with Session(engine) as session:
        rows = session.execute(
            select(db.Event.incident_id, db.Event.detail).where(db.Event.kind == "escalated")
        ).all()
        keys = {(r.incident_id, r.detail["target"], r.detail["level"]) for r in rows}
        mails = session.scalar(select(func.count()).where(db.Outbox.kind == "escalation"))
        recorded = session.scalar(select(func.count()).select_from(db.Escalation))
    assert len(rows) == len(keys) == mails == recorded == INCIDENTS * LEVELS
    engine.dispose()
