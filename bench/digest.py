"""What the scheduled queue digest costs: every digest of one moment (each solver's queue and
each team's, mailproc.desk.digest), on SQLite, for desks with growing backlogs of open
incidents.

The corpus (bench/corpus.py; about 70 % new reports, some assigned by solvers' replies) goes
through `Desk.batch` on a Monday morning; then the digests of that week's five weekday
moments are queued, one moment per run (a moment is sent once: each run claims its own). It
prints, per backlog, the median time of one moment's digests, per digest, and next to it what
one mail cost the Desk while the backlog was built.

    .venv/bin/python bench/digest.py [--sizes 300 1000 3000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.corpus import generate
from mailproc.config.settings import demo_settings
from mailproc.desk.digest import send_digests
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Origin
from mailproc.store import db
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade

MONDAY_7_UTC = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)  # 07:00 in Prague, before the digest


def one_size(size: int, folder: Path) -> None:
    settings = demo_settings(environ={"MAILPROC_SECRET": "bench"}).model_copy(
        update={"database_url": f"sqlite:///{folder / f'digest-{size}.db'}"}
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    desk = Desk(settings, engine, clock=lambda: MONDAY_7_UTC)
    mails = [raw for raw, _ in generate(size)]
    started = time.perf_counter()
    for start in range(0, len(mails), 100):
        with desk.batch() as handle:
            for raw in mails[start : start + 100]:
                handle(raw, Origin("bench"))
    per_mail = (time.perf_counter() - started) / len(mails)
    with Session(engine) as session:
        open_count = session.scalar(
            select(func.count()).select_from(db.Incident).where(db.Incident.closed_at.is_(None))
        )
    moments, queued = [], []
    for day in range(5):
        at = MONDAY_7_UTC + timedelta(days=day, hours=1)  # 08:00 in Prague
        begun = time.perf_counter()
        queued.append(send_digests(settings, engine, lambda at=at: at, desk.outbox))
        moments.append(time.perf_counter() - begun)
    moment, digests = statistics.median(moments), statistics.median(queued)
    print(
        f"  {size:>5} mails, {open_count:>5} open incidents: one moment {moment * 1e3:8.1f} ms, "
        f"{digests:.0f} digests, {moment / max(digests, 1) * 1e3:6.1f} ms per digest "
        f"(a mail into the Desk: {per_mail * 1e3:.1f} ms)"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 3000])
    args = parser.parse_args()
    print("the digests of one scheduled moment, SQLite, median of the five weekday moments:")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            one_size(size, Path(folder))


if __name__ == "__main__":
    main()
