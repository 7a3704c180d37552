"""One escalation pass over 1,000,000 open incidents against one over 10,000, 100 due in each.

    .venv/bin/python bench/escalation.py                      # 10,000 and 1,000,000, both DBs
    .venv/bin/python bench/escalation.py --sizes 10000 --sqlite-only

For each database (a SQLite file; a durable PostgreSQL from tests.support.servers) and each size, in
one run: the incidents are bulk-inserted as `SlaBook.refresh` would have left them (Core
executemany on SQLite, COPY on PostgreSQL; one `created` event each, then ANALYZE). All are
open, on the round-the-clock network service at P4 (response 8h: level 1 at 6h, level 2 at
8h). For each of three passes ten minutes apart, 100 incidents reach level 1 in the ten
minutes before it; every other incident's next escalation lies hours ahead. Then:

- idle pass: a pass with nothing due (the indexed query alone), median of 25;
- pass: `Escalator.run` sending 100 escalations (each recomputed from its history, recorded,
  its `escalated` event written and its mail rendered into the outbox), median of the three;
- recompute: `SlaBook.refresh` (history and sent levels read, clocks and ladder computed, the
  columns written) on 1,000 random incidents in one transaction, per incident; and the pure
  part of it (`timeline` + `compute` + `plan`) alone;
- what keeping the SLA state costs `Desk.handle` per new incident: blocks of 100 mails with
  and without it, alternating, on a fresh database (notifications off).

The pass must cost about the same over 1,000,000 incidents as over 10,000: it reads the
incidents whose `next_escalation_at` has come through its index, never the others.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from mailproc.config.settings import Settings, demo_settings  # noqa: E402
from mailproc.desk.escalations import Escalator  # noqa: E402
from mailproc.desk.mail import Desk  # noqa: E402
from mailproc.desk.writes import Writes  # noqa: E402
from mailproc.sla.clocks import compute  # noqa: E402
from mailproc.sla.ladder import plan  # noqa: E402
from mailproc.sla.state import SlaBook, escalations, history  # noqa: E402
from mailproc.sla.timeline import timeline  # noqa: E402
from mailproc.store import db  # noqa: E402
from mailproc.store.schema import upgrade  # noqa: E402
from tests.support.mailfactory import make_mail  # noqa: E402
from tests.support.servers import PostgresServer  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PASSES = tuple(NOW + timedelta(minutes=10 * k) for k in range(3))
DUE_PER_PASS = 100
CHUNK = 20_000
H = timedelta(hours=1)


@dataclass(frozen=True)
class Figures:
    database: str
    incidents: int
    load_s: float
    idle_ms: float
    pass_ms: float
    recompute_us: float
    pure_us: float


def rows(count: int, seed: int = 7) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(incident, created event) pairs: the first 300 due at the three passes, 100 each."""
    rng = random.Random(seed)
    for number in range(1, count + 1):
        batch = (number - 1) // DUE_PER_PASS
        if batch < len(PASSES):  # level 1 (6h) in the ten minutes before its pass
            created = PASSES[batch] - 6 * H - timedelta(seconds=rng.randint(0, 599))
        else:  # opened in the last five hours: level 1 at least an hour after the last pass
            created = NOW - timedelta(seconds=rng.randint(0, 5 * 3600))
        incident = {
            "id": number,
            "service": "network",
            "status": "New",
            "priority": "P4",
            "title": f"Switch {number} down",
            "reporter": f"user{number % 5000}@example.org",
            "reporter_name": "",
            "created_at": created,
            "updated_at": created,
            "response_due": created + 8 * H,
            "resolution_due": created + 40 * H,
            "at_risk_at": created + 6 * H,
            "next_escalation_at": created + 6 * H,
        }
        detail = {"service": "network", "title": incident["title"], "priority": "P4"}
        event = {
            "incident_id": number,
            "at": created,
            "actor": incident["reporter"],
            "kind": "created",
            "detail": detail,
        }
        yield incident, event


def load(engine: Engine, count: int) -> float:
    """Bulk insert; returns the seconds it took (ANALYZE included)."""
    start = time.perf_counter()
    if engine.dialect.name == "postgresql":
        _copy(engine, count)
    else:
        _executemany(engine, count)
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return time.perf_counter() - start


def _executemany(engine: Engine, count: int) -> None:
    incidents, events = insert(db.Incident), insert(db.Event)
    batch: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for pair in rows(count):
        batch.append(pair)
        if len(batch) == CHUNK:
            _write(engine, incidents, events, batch)
            batch = []
    if batch:
        _write(engine, incidents, events, batch)


def _write(engine: Engine, incidents: Any, events: Any, batch: list[Any]) -> None:
    with engine.begin() as connection:
        connection.execute(incidents, [i for i, _ in batch])
        connection.execute(events, [e for _, e in batch])


_INCIDENT_COLUMNS = (
    *("id", "service", "status", "priority", "title", "reporter", "reporter_name"),
    *("created_at", "updated_at", "response_due", "resolution_due", "at_risk_at"),
    "next_escalation_at",
)
_EVENT_COLUMNS = ("incident_id", "at", "actor", "kind", "detail")


def _copy(engine: Engine, count: int) -> None:
    import json

    def naive(value: Any) -> Any:
        return value.replace(tzinfo=None) if isinstance(value, datetime) else value

    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        columns = ", ".join(_INCIDENT_COLUMNS)
        with cursor.copy(f"COPY incidents ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for incident, _ in rows(count):
                copy.write_row([naive(incident[c]) for c in _INCIDENT_COLUMNS])
        with cursor.copy(f"COPY events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
            for _, event in rows(count):  # the same rows again: same seed
                values = [naive(event[c]) for c in _EVENT_COLUMNS[:-1]]
                copy.write_row([*values, json.dumps(event["detail"])])
        cursor.execute("SELECT setval('incidents_id_seq', %s)", (count,))
        raw.commit()
    finally:
        raw.close()


def median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def passes(settings: Settings, engine: Engine) -> tuple[float, float]:
    """(idle pass ms, pass with 100 due ms): medians."""
    clock = Clock()
    escalator = Escalator(settings, engine, clock)
    clock.now = NOW - 2 * H
    idle = median_ms(escalator.run, 25)
    timings = []
    for moment in PASSES:
        clock.now = moment
        start = time.perf_counter()
        sent = escalator.run()
        timings.append(time.perf_counter() - start)
        if sent != DUE_PER_PASS:
            raise SystemExit(f"expected {DUE_PER_PASS} escalations at {moment}, sent {sent}")
    return idle, statistics.median(timings) * 1000


def recompute(settings: Settings, engine: Engine, count: int) -> tuple[float, float]:
    """(refresh µs per incident, pure computation µs per incident) over 1,000 random ones."""
    book = SlaBook(settings)
    numbers = random.Random(3).sample(range(1, count + 1), min(1000, count))
    with Session(engine) as session:
        incidents = [session.get(db.Incident, n) for n in numbers]
        start = time.perf_counter()
        for incident in incidents:
            assert incident is not None
            book.refresh(session, incident, NOW)
        session.flush()
        refresh = (time.perf_counter() - start) / len(numbers)
        inputs = [(history(session, n), escalations(session, n).sent) for n in numbers]
        session.rollback()
    ladder = book.policy.of("network").ladder
    start = time.perf_counter()
    for records, sent in inputs:
        status = compute(timeline(records, settings), book.policy, NOW)
        plan(status, ladder, sent, NOW)
    pure = (time.perf_counter() - start) / len(numbers)
    return refresh * 1e6, pure * 1e6


def desk_overhead(url: str, settings: Settings, blocks: int = 12, size: int = 100) -> str:
    """Desk.handle per new incident with and without keeping the SLA state (notifications
    off, so the difference is not drowned): blocks of mails alternating, medians."""
    quiet = settings.notifications.model_copy(update={"enabled": False})
    settings = settings.model_copy(update={"database_url": url, "notifications": quiet})
    engine = db.make_engine(url)
    upgrade(engine)
    desk = Desk(settings, engine, Clock())
    mails = iter(
        make_mail(subject=f"Printer {n} jammed", sender=f"u{n}@example.org")
        for n in range((blocks + 1) * size)
    )
    for _ in range(size):  # warm up
        desk.handle(next(mails))
    keep, times = Writes.keep_sla, {True: [], False: []}
    try:
        for block in range(blocks):
            kept = block % 2 == 0
            Writes.keep_sla = keep if kept else _skip  # type: ignore[method-assign]
            start = time.perf_counter()
            for _ in range(size):
                desk.handle(next(mails))
            times[kept].append((time.perf_counter() - start) / size * 1000)
    finally:
        Writes.keep_sla = keep  # type: ignore[method-assign]
    engine.dispose()
    with_, without = statistics.median(times[True]), statistics.median(times[False])
    return f"{with_:.2f} ms with, {without:.2f} ms without: {with_ - without:.2f} ms"


def _skip(_writes: Writes, _incident: db.Incident) -> None:
    return None


def measure(url: str, count: int, settings: Settings) -> Figures:
    settings = settings.model_copy(update={"database_url": url})
    engine = db.make_engine(url)
    upgrade(engine)
    load_s = load(engine, count)
    with Session(engine) as session:
        stored = session.scalar(select(func.count()).select_from(db.Incident))
    assert stored == count, stored
    idle, pass_ms = passes(settings, engine)
    refresh, pure = recompute(settings, engine, count)
    engine.dispose()
    name = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    return Figures(name, count, load_s, idle, pass_ms, refresh, pure)


def report(figures: list[Figures]) -> None:
    print("| database | open incidents | bulk load s | idle pass ms | pass, 100 due, ms |", end="")
    print(" ms per escalation | refresh µs/incident | pure µs/incident |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for f in figures:
        print(
            f"| {f.database} | {f.incidents:,} | {f.load_s:.1f} | {f.idle_ms:.2f} | "
            f"{f.pass_ms:.0f} | {f.pass_ms / DUE_PER_PASS:.2f} | {f.recompute_us:.0f} | "
            f"{f.pure_us:.0f} |"
        )
    print()
    for name in dict.fromkeys(f.database for f in figures):
        mine = sorted((f for f in figures if f.database == name), key=lambda f: f.incidents)
        if len(mine) > 1:
            small, large = mine[0], mine[-1]
            print(
                f"{name}: pass over {large.incidents:,} / over {small.incidents:,}: "
                f"{large.pass_ms / small.pass_ms:.2f}; "
                f"idle pass: {large.idle_ms / small.idle_ms:.2f}"
            )
            full = large.incidents * large.recompute_us / 1e6
            print(
                f"{name}: recomputing all {large.incidents:,} open incidents instead, as a pass "
                f"without stored due times would: about {full:,.0f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres-only", action="store_true")
    args = parser.parse_args()
    settings = demo_settings(environ={"MAILPROC_SECRET": "benchmark"})
    figures: list[Figures] = []
    overhead: dict[str, str] = {}
    if not args.postgres_only:
        with tempfile.TemporaryDirectory(prefix="mailproc-bench-") as folder:
            for size in args.sizes:
                figures.append(measure(f"sqlite:///{folder}/e{size}.db", size, settings))
                print(f"  SQLite, {size:,} incidents: done", file=sys.stderr)
            overhead["SQLite"] = desk_overhead(f"sqlite:///{folder}/desk.db", settings)
    if not args.sqlite_only:
        with PostgresServer(durable=True) as server:
            for size in args.sizes:
                url = server.create_database(f"escalation_{size}")
                figures.append(measure(url, size, settings))
                server.drop_database(f"escalation_{size}")
                print(f"  PostgreSQL, {size:,} incidents: done", file=sys.stderr)
            overhead["PostgreSQL"] = desk_overhead(server.create_database("desk"), settings)
    report(figures)
    for name, figure in overhead.items():
        print(f"{name}: Desk.handle per new incident, keeping the SLA state: {figure}")


if __name__ == "__main__":
    main()
