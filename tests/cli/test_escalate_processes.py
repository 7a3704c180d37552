"""Two `mailproc escalate --once` processes started at the same moment on one database with
many due incidents never send the same escalation twice (row locks with SKIP LOCKED on
PostgreSQL, the write lock on SQLite, and the unique escalation row under both)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.config.settings import demo_settings
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition
from mailproc.store import db
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.clirunner import run_together, write_demo_config
from tests.support.desk import FakeClock
from tests.support.mailfactory import make_mail

INCIDENTS = 40
LEVELS = 6  # network (24x7), P3, ten days old: three levels of each target are due


def test_two_passes_at_once_send_each_escalation_once(database_url, tmp_path):
    engine = make_engine(database_url)
    upgrade(engine)
    settings = demo_settings(
        environ={"MAILPROC_DATABASE_URL": database_url, "MAILPROC_SECRET": "s3cret"}
    )
    desk = Desk(settings, engine, FakeClock(datetime.now(UTC) - timedelta(days=10)))
    for n in range(INCIDENTS):
        raw = make_mail(to="network-support@example.com", subject=f"Switch {n} down")
        assert desk.handle(raw).disposition is Disposition.PROCESSED
    env = {**os.environ, "MAILPROC_DATABASE_URL": database_url, "MAILPROC_SECRET": "s3cret"}
    env["MAILPROC_CONFIG"] = str(write_demo_config(tmp_path))
    results = run_together(["--log-level", "WARNING", "escalate", "--once"], env, cwd=tmp_path)
    assert [code for code, _out, _err in results] == [0, 0], results
    counts = [int(out.split()[1]) for _code, out, _err in results]
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
