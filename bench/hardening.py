"""What the hardening costs: the limit queries over 10,000 and 1,000,000 stored rows, the
Desk per kind of mail, and the pure checks.

    .venv/bin/python bench/hardening.py                          # SQLite and PostgreSQL
    .venv/bin/python bench/hardening.py --sqlite-only --rows 10000 100000

In one run, for each database (a SQLite file; a durable PostgreSQL from tests.support.servers):

- limits: the outbox and the incidents bulk-inserted with `rows` rows each (answers and other
  notices to 50,000 addresses over 30 days, 250 answers in the last hour; incidents from 50,000
  reporters), then, each the median of 300 in a read transaction of its own: the storm
  breaker's screen of one answer (`limits.screen`: the breaker rows, the hour's answers in all
  and to that correspondent), the per-sender count (`limits.sender_throttle`) and the
  undeliverable lookup (`undeliverable.marks`); at the largest size once more with 100,000
  answers held (suppressed) in the last hour, as in a storm;
- the Desk: `Desk.handle` per mail, median over ten blocks of 50, notifications on, for a new
  incident, the same with the three limit checks stubbed out (alternating blocks: their cost
  per mail), an auto-reply to an incident, a bounce of an acknowledgment (marks the address),
  a solver's command proven by the reply token, and a different mail reusing a Message-ID;
- pure: microseconds per call (median of 2,000) of the checks every mail meets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, insert, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from mailproc import signing  # noqa: E402
from mailproc.config.settings import Settings, demo_settings  # noqa: E402
from mailproc.desk import mail as service_module  # noqa: E402
from mailproc.desk.mail import Desk  # noqa: E402
from mailproc.inbound.automatic import detect  # noqa: E402
from mailproc.inbound.bounces import read_report  # noqa: E402
from mailproc.inbound.fingerprint import fingerprint  # noqa: E402
from mailproc.inbound.parse import parse_mail  # noqa: E402
from mailproc.safety import limits, undeliverable  # noqa: E402
from mailproc.store import db  # noqa: E402
from mailproc.store.schema import upgrade  # noqa: E402
from mailproc.workflow.proof import unproven  # noqa: E402
from tests.support.bounces import dsn, vacation_reply  # noqa: E402
from tests.support.mailfactory import make_mail, message_id_of  # noqa: E402
from tests.support.servers import PostgresServer  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
CHUNK = 20_000
PEOPLE = 50_000
RECENT = 250  # answers in the last hour, under the default limits: all of them are counted


def median_us(call: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


# --- the limit queries over many rows ---------------------------------------------------------


def _outbox_rows(count: int, offset: int) -> Iterator[dict[str, Any]]:
    kinds = ("acknowledgment", "comment", "assigned", "transcript", "closed")
    for n in range(offset, offset + count):
        recent = n < RECENT
        age = timedelta(minutes=n % 55) if recent else timedelta(hours=2 + n % (24 * 30))
        yield {
            "incident_id": 1,
            "kind": "acknowledgment" if recent else kinds[n % len(kinds)],
            "recipient": f"p{n % PEOPLE}@example.org",
            "envelope_from": "support@example.com",
            "message_id": f"bench.{n}@example.com",
            "subject": "",
            "raw": b"",
            "status": "sent",
            "attempts": 1,
            "created_at": NOW - age,
            "next_attempt_at": NOW - age,
        }


def _incident_rows(count: int) -> Iterator[dict[str, Any]]:
    for n in range(count):
        created = NOW - timedelta(minutes=5 + n % (60 * 24 * 30))
        yield {
            "service": "general",
            "status": "New",
            "priority": "P3",
            "title": f"bench {n}",
            "reporter": f"p{n % PEOPLE}@example.org",
            "reporter_name": "",
            "created_at": created,
            "updated_at": created,
        }


def _load(engine: Engine, table: Any, rows: Iterator[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            with engine.begin() as connection:
                connection.execute(insert(table), batch)
            batch = []
    if batch:
        with engine.begin() as connection:
            connection.execute(insert(table), batch)


def limit_queries(engine: Engine, settings: Settings, times: int) -> tuple[float, float, float]:
    """In one transaction, as the Desk runs them (rolled back: nothing is written), each call
    as the first of its group of mails: the counts a transaction keeps are dropped before it."""
    who = ["p7@example.org", "p8@example.org"]
    with Session(engine) as session, session.begin():

        def first(call: Callable[[], object]) -> Callable[[], object]:
            return lambda: (session.info.clear(), call())

        screen = median_us(first(lambda: limits.screen(session, settings, who[:1], NOW)), times)
        count = median_us(
            first(lambda: limits.sender_throttle(session, settings, who[0], NOW)), times
        )
        marks = median_us(
            first(lambda: undeliverable.marks(session, who, NOW, settings.bounces)), times
        )
        session.rollback()
    return screen, count, marks


def limits_at(url: str, settings: Settings, rows: int, storm: bool) -> list[str]:
    engine = db.make_engine(url)
    upgrade(engine)
    start = time.perf_counter()
    _load(engine, db.Incident, _incident_rows(rows))
    _load(engine, db.Outbox, _outbox_rows(rows, 0))
    _analyze(engine)
    loaded = time.perf_counter() - start
    screen, throttle, marks = limit_queries(engine, settings, 300)
    lines = [f"| {rows:,} | {loaded:.0f} | {screen:.0f} | {throttle:.0f} | {marks:.0f} |"]
    if storm:
        held = ({**r, "status": "suppressed"} for r in _outbox_rows(100_000, rows))
        _load(engine, db.Outbox, ({**r, "created_at": NOW - timedelta(minutes=30)} for r in held))
        _analyze(engine)
        screen, throttle, marks = limit_queries(engine, settings, 300)
        figures = f"{screen:.0f} | {throttle:.0f} | {marks:.0f}"
        lines.append(f"| {rows:,} + 100,000 held in the hour | | {figures} |")
    engine.dispose()
    return lines


def _analyze(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


# --- the Desk, per kind of mail ----------------------------------------------------------------


class Clock:
    """20 s a mail: 180 answers an hour, under the default limit, so no breaker opens and the
    counts run over a full hour's worth of rows."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=20)
        return self.now


@contextmanager
def unchecked() -> Iterator[None]:
    """The three limit checks stubbed out, to measure what they cost the Desk."""
    saved = (limits.screen, service_module.sender_throttle, undeliverable.marks)
    limits.screen = lambda *a, **k: ({}, [])  # type: ignore[assignment]
    service_module.sender_throttle = lambda *a, **k: None  # type: ignore[assignment]
    undeliverable.marks = lambda *a, **k: {}  # type: ignore[assignment]
    try:
        yield
    finally:
        limits.screen, service_module.sender_throttle, undeliverable.marks = saved


def desk_figures(url: str, settings: Settings, blocks: int, size: int) -> dict[str, float]:
    engine = db.make_engine(url)
    upgrade(engine)
    # tina answers every command block: her own breaker would otherwise hold her transcripts
    limits = settings.limits.model_copy(update={"replies_per_correspondent_per_hour": 10_000})
    tuned = settings.model_copy(update={"database_url": url, "limits": limits})
    desk = Desk(tuned, engine, Clock())
    serial = iter(range(10**9))

    def new() -> bytes:
        n = next(serial)
        return make_mail(subject=f"Printer {n} jammed", sender=f"u{n}@example.org")

    for _ in range(size):
        desk.handle(new())  # warm up: templates compiled, caches filled
    times: dict[str, list[float]] = {}

    def block(name: str, mails: list[bytes]) -> None:
        start = time.perf_counter()
        for raw in mails:
            desk.handle(raw)
        times.setdefault(name, []).append((time.perf_counter() - start) / len(mails) * 1000)

    for _ in range(blocks):
        block("new incident", [new() for _ in range(size)])
        with unchecked():
            block("new incident, limit checks stubbed", [new() for _ in range(size)])
        opened = [new() for _ in range(size)]
        for raw in opened:
            desk.handle(raw)
        acks = _acks(engine, len(opened))
        block("auto-reply to an incident", [vacation_reply("V <v@x.org>", a, "x") for a in acks])
        block("bounce of an acknowledgment", [dsn(a, f"gone{i}@x.org") for i, a in enumerate(acks)])
        commands = [_command(desk, message_id_of(raw)) for raw in opened]
        block("solver command, reply token", commands)
        block("another mail reusing a Message-ID", [_reuse(raw) for raw in opened])
    engine.dispose()
    return {name: statistics.median(values) for name, values in times.items()}


def _acks(engine: Engine, count: int) -> list[str]:
    with Session(engine) as session:
        ids = session.scalars(
            select(db.Outbox.message_id)
            .where(db.Outbox.kind == "acknowledgment")
            .order_by(db.Outbox.id.desc())
            .limit(count)
        )
        return list(ids)


def _command(desk: Desk, original: str) -> bytes:
    with Session(desk.engine) as session:
        number = session.scalar(
            select(db.Message.incident_id).where(db.Message.message_id == original)
        )
    key = desk.settings.signing_key
    address = signing.reply_address(
        key, "mail-support@example.com", number or 0, "tina@example.com"
    )
    return make_mail(
        sender="Tina <tina@example.com>",
        to=address,
        subject="Re: [ASSIGN tina]",
        in_reply_to=original,
        authenticated=False,
    )


def _reuse(raw: bytes) -> bytes:
    return raw.replace(b"jammed", b"on fire")


# --- pure checks -------------------------------------------------------------------------------


def pure_figures(settings: Settings) -> dict[str, float]:
    raw = make_mail(
        sender="Tina <tina@example.com>",
        subject="Re: [INC-42] Printer jammed [ASSIGN tina]",
        body="Looking into it.\n\n" + "> quoted history line\n" * 60,
        in_reply_to="m1@test.example",
    )
    mail = parse_mail(raw)
    bounce = parse_mail(dsn("mp1.1.aaaaaaaa.x.aaaaaaaaaaaaaaaa@example.com", "bob@example.org"))
    key = settings.signing_key
    calls: dict[str, Callable[[], object]] = {
        f"parse_mail, a {len(raw):,}-byte reply (for scale)": lambda: parse_mail(raw),
        "fingerprint": lambda: fingerprint(raw),
        "automail.detect": lambda: detect(mail, settings.own_addresses),
        "command_auth.unproven (Authentication-Results)": lambda: unproven(mail, settings, 42),
        "signing.reply_address": lambda: signing.reply_address(
            key, "support@example.com", 42, "tina@example.com"
        ),
        "dsn.read_report, a bounce": lambda: read_report(bounce),
    }
    return {name: median_us(call, 2000) for name, call in calls.items()}


# --- the run -----------------------------------------------------------------------------------


def run(url: str, name: str, settings: Settings, sizes: list[int], dbs: dict[str, Any]) -> None:
    lines: list[str] = []
    for rows in sizes:
        target = dbs["make"](f"limits_{rows}")
        lines += limits_at(target, settings, rows, storm=rows == max(sizes))
        print(f"  {name}, {rows:,} rows: done", file=sys.stderr)
    dbs["limits"][name] = lines
    dbs["desk"][name] = desk_figures(dbs["make"]("desk"), settings, blocks=10, size=50)


def report(limits: dict[str, list[str]], desks: dict[str, dict[str, float]]) -> None:
    for name, lines in limits.items():
        print(f"\n{name}: the limit checks, µs per call (median of 300)\n")
        print(
            "| stored rows (outbox, incidents) | bulk load s | breaker screen | sender count |",
            end="",
        )
        print(" undeliverable lookup |")
        print("| --- | ---: | ---: | ---: | ---: |")
        print("\n".join(lines))
    names = list(desks)
    print("\nDesk.handle, ms per mail (median of blocks of 50, notifications on)\n")
    print("| mail | " + " | ".join(names) + " |")
    print("| --- |" + " ---: |" * len(names))
    for kind in desks[names[0]]:
        print(f"| {kind} | " + " | ".join(f"{desks[n][kind]:.2f}" for n in names) + " |")
    for n in names:
        full = desks[n]["new incident"]
        bare = desks[n]["new incident, limit checks stubbed"]
        cost = f"{full - bare:.2f} ms ({full / bare:.2f}×)"
        print(f"{n}: the limit checks cost a new incident {cost}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    settings = demo_settings(environ={"MAILPROC_SECRET": "benchmark"})
    limits: dict[str, list[str]] = {}
    desks: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="mailproc-bench-") as folder:
        made = {
            "make": lambda name: f"sqlite:///{folder}/{name}.db",
            "limits": limits,
            "desk": desks,
        }
        run("", "SQLite", settings, args.rows, made)
    if not args.sqlite_only:
        with PostgresServer(durable=True) as server:
            made = {"make": server.create_database, "limits": limits, "desk": desks}
            run("", "PostgreSQL", settings, args.rows, made)
    report(limits, desks)
    print("\nPure checks, µs per call (median of 2,000)\n")
    for name, micros in pure_figures(settings).items():
        print(f"- {name}: {micros:.1f}")


if __name__ == "__main__":
    main()
