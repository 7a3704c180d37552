"""Ingestion throughput against the mail parser's own limit, on SQLite and PostgreSQL.

    .venv/bin/python bench/ingest.py              # N = 1,000 and 10,000, plus the 100k case
    .venv/bin/python bench/ingest.py --sizes 1000 --no-large

For each N, in one run: the limit line (the stdlib parser alone, reading the headers and the
text body of the same files) and `mailproc ingest` end to end on SQLite and on a durable
PostgreSQL, each in its own process so CPU time and peak RSS are that process's own. Then
1,000 further mails into a database already holding 100,000 incidents, against 1,000 into an
empty one. Every run is checked with `mailproc export`: each reply threaded onto the incident
of the report that opened its thread, no incident lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import write as write_corpus  # noqa: E402
from tests.support.servers import PostgresServer  # noqa: E402

MAILPROC = [sys.executable, "-m", "mailproc"]
LIMIT = [sys.executable, str(ROOT / "bench" / "limit_line.py")]
# The embedded defaults with the loop limits out of the way: a backlog of 10,000 mails read in
# a minute would open the storm breaker, and rows held unrendered would flatter the figures.
CONFIG = (ROOT / "mailproc" / "config" / "default_config.toml").read_text() + (
    "\n[limits]\nreplies_per_hour = 1000000\nreplies_per_correspondent_per_hour = 1000000\n"
    "new_incidents_per_sender_per_hour = 1000000\n"
)


@dataclass(frozen=True)
class Run:
    label: str
    mails: int
    wall: float
    cpu: float
    rss_mb: float

    @property
    def rate(self) -> float:
        return self.mails / self.wall


def measure(label: str, argv: Sequence[str], mails: int, env: dict[str, str]) -> Run:
    """Wall time, CPU time and peak RSS of one child process (wait4 gives its own rusage)."""
    with tempfile.TemporaryFile() as errors:  # a pipe would stall a child that logs a lot
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    if status != 0:
        raise SystemExit(f"{label} failed ({status}):\n{stderr[-2000:]}")
    return Run(label, mails, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def environment(url: str, work: Path) -> dict[str, str]:
    config = work / "mailproc.toml"
    if not config.exists():
        config.write_text(CONFIG)
    env = {**os.environ, "MAILPROC_DATABASE_URL": url, "MAILPROC_CONFIG": str(config)}
    env["MAILPROC_SECRET"] = env.get("MAILPROC_SECRET", "bench-secret-not-for-production")
    return env


def init(env: dict[str, str]) -> None:
    subprocess.run([*MAILPROC, "init"], env=env, check=True, capture_output=True)


def check(env: dict[str, str], manifest: Path, preexisting: int = 0) -> str:
    """Every mail of the manifest on the incident of its thread's report, once."""
    out = subprocess.run(
        [*MAILPROC, "export"], env=env, check=True, capture_output=True, text=True
    ).stdout
    incident_of: dict[str, int] = {}
    incidents = 0
    for line in out.splitlines():
        data = json.loads(line)
        incidents += 1
        for mid in data["message_ids"]:
            if mid in incident_of:
                return f"FAIL: {mid} on two incidents"
            incident_of[mid] = data["number"]
    roots = set()
    for line in manifest.read_text().splitlines():
        entry = json.loads(line)
        roots.add(entry["root"])
        got, want = incident_of.get(entry["message_id"]), incident_of.get(entry["root"])
        if got is None or got != want:
            return f"FAIL: {entry['message_id']} not threaded onto {entry['root']}"
    if incidents - preexisting != len(roots):
        return f"FAIL: {incidents - preexisting} incidents for {len(roots)} reports"
    return "ok"


def run_size(n: int, work: Path, pg: PostgresServer, rows: list[list[str]]) -> list[Run]:
    corpus = write_corpus(n, work / f"corpus-{n}")
    manifest = corpus.parent / "manifest.jsonl"
    limit = measure(f"limit line, N={n}", [*LIMIT, str(corpus)], n, dict(os.environ))
    runs, own = [limit], [_row(limit, limit, "-")]
    targets = {  # label, database, extra ingest arguments
        "SQLite": (f"sqlite:///{work}/ingest-{n}.db", []),
        "PostgreSQL": (pg.create_database(f"ingest_{n}"), []),
        "SQLite, one process (--jobs 0)": (f"sqlite:///{work}/serial-{n}.db", ["--jobs", "0"]),
    }
    for name, (url, extra) in targets.items():
        env = environment(url, work)
        init(env)
        argv = [*MAILPROC, "ingest", "-q", *extra, str(corpus)]
        run = measure(f"mailproc ingest, {name}, N={n}", argv, n, env)
        runs.append(run)
        own.append(_row(run, limit, check(env, manifest)))
    rows.extend(own)
    return runs


def _row(run: Run, limit: Run, verdict: str) -> list[str]:
    return [
        run.label,
        f"{run.rate:,.0f}",
        f"{run.cpu / run.mails * 1000:.2f}",
        f"{run.rss_mb:.0f}",
        f"{run.rate / limit.rate:.2f}",
        verdict,
    ]


def populate(url: str, incidents: int) -> None:
    """Fill a database with `incidents` incidents (with a message, an event and a thread ref
    each) by bulk insert, to show that per-mail cost does not grow with the database."""
    from sqlalchemy import insert

    from mailproc.store import db
    from mailproc.store.db import make_engine

    engine = make_engine(url)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for start in range(1, incidents + 1, 5000):
            ids = range(start, min(start + 5000, incidents + 1))
            conn.execute(
                insert(db.Incident),
                [
                    {
                        "id": i,
                        "service": "email",
                        "status": "New",
                        "priority": "P3",
                        "title": f"old incident {i}",
                        "reporter": f"user{i % 300}@customer.example.org",
                        "reporter_name": "",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(db.Message),
                [
                    {
                        "id": i,
                        "key": f"old-{i}@x",
                        "message_id": f"old-{i}@x",
                        "content_hash": "0" * 64,
                        "incident_id": i,
                        "sender": "",
                        "subject": "",
                        "source": "bench",
                        "outcome": "processed",
                        "received_at": now,
                        "raw": b"Subject: old\r\n\r\nx",
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(db.ThreadRef),
                [{"message_id": f"old-{i}@x", "incident_id": i} for i in ids],
            )
            conn.execute(
                insert(db.Event),
                [
                    {
                        "incident_id": i,
                        "at": now,
                        "actor": "",
                        "kind": "created",
                        "detail": {"title": "old", "service": "email", "text": ""},
                        "message_pk": i,
                    }
                    for i in ids
                ],
            )
        if conn.dialect.name == "postgresql":
            for table in ("incidents", "messages", "events"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {incidents})"
                )
    engine.dispose()


def run_large(
    work: Path, pg: PostgresServer, rows: list[list[str]], stored: int, repeats: int
) -> None:
    """1,000 mails into an empty database and into one holding `stored` incidents, each
    `repeats` times on a fresh copy, alternating, and the medians: one pair of runs on a shared
    VM differs by its noise, a fifth either way, more than by the data."""
    corpus = write_corpus(1000, work / "corpus-large", seed=7, tag="late")
    manifest = corpus.parent / "manifest.jsonl"
    copiers = (("SQLite", _sqlite_copier(work)), ("PostgreSQL", _postgres_copier(pg, work)))
    for name, copy in copiers:
        templates = {"empty": (copy.template("empty", 0), 0)}
        templates[f"{stored:,} stored"] = (copy.template("full", stored), stored)
        runs: dict[str, list[Run]] = {label: [] for label in templates}
        checks: dict[str, str] = {}
        for n in range(repeats):
            for label, (template, pre) in templates.items():
                env = environment(copy.fresh(template, f"{label.split()[0]}_{n}"), work)
                argv = [*MAILPROC, "ingest", "-q", str(corpus)]
                runs[label].append(measure(f"1,000 more, {name}, {label}", argv, 1000, env))
                if n == 0:
                    checks[label] = check(env, manifest, pre)
        base = statistics.median(r.cpu for r in runs["empty"])
        for label, done in runs.items():
            cpu = statistics.median(r.cpu for r in done)
            rows.append(
                [
                    f"1,000 more, {name}, {label}",
                    f"{statistics.median(r.rate for r in done):,.0f}",
                    f"{cpu:.2f}",
                    f"{max(r.rss_mb for r in done):.0f}",
                    f"{cpu / base:.2f}",
                    checks[label],
                ]
            )


class _Copier(Protocol):
    def template(self, name: str, incidents: int) -> str: ...
    def fresh(self, template: str, name: str) -> str: ...


def _prepare(url: str, work: Path, incidents: int) -> str:
    env = environment(url, work)
    init(env)
    if incidents:  # in a child, so this process stays small: a fork starts at its size
        subprocess.run(
            [sys.executable, __file__, "--populate", url, str(incidents)], check=True, env=env
        )
    return url


def _sqlite_copier(work: Path) -> _Copier:
    class Copier:
        def template(self, name: str, incidents: int) -> str:
            return _prepare(f"sqlite:///{work}/{name}.db", work, incidents)

        def fresh(self, template: str, name: str) -> str:
            target = work / f"copy-{name}.db"
            shutil.copyfile(template.removeprefix("sqlite:///"), target)
            return f"sqlite:///{target}"

    return Copier()


def _postgres_copier(pg: PostgresServer, work: Path) -> _Copier:
    class Copier:
        def template(self, name: str, incidents: int) -> str:
            _prepare(pg.create_database(name), work, incidents)
            return name

        def fresh(self, template: str, name: str) -> str:
            import psycopg
            from psycopg import sql

            with psycopg.connect(pg.conninfo(), autocommit=True) as conn:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(f"copy_{name}"), sql.Identifier(template)
                    )
                )
            return pg.url(f"copy_{name}")

    return Copier()


def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--stored", type=int, default=100_000, help="incidents for the large case")
    parser.add_argument("--no-large", action="store_true")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case of the large test")
    parser.add_argument("--populate", nargs=2, metavar=("URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.populate:
        populate(args.populate[0], int(args.populate[1]))
        return
    python = sys.version.split()[0]
    print(f"machine: {os.cpu_count()} cores, Python {python}, {time.strftime('%Y-%m-%d')}")
    with (
        tempfile.TemporaryDirectory(prefix="mailproc-bench-") as tmp,
        PostgresServer(durable=True) as pg,
    ):
        work = Path(tmp)
        rows: list[list[str]] = []
        runs = {n: run_size(n, work, pg, rows) for n in args.sizes}
        print(
            table(["run", "mails/s", "CPU ms/mail", "peak RSS MB", "ratio to limit", "check"], rows)
        )
        if len(args.sizes) > 1:
            small, big = runs[min(args.sizes)], runs[max(args.sizes)]
            for a, b in zip(small[1:], big[1:], strict=True):
                print(f"peak RSS {b.label} / {a.label}: {b.rss_mb / a.rss_mb:.2f}")
        if not args.no_large:
            large: list[list[str]] = []
            run_large(work, pg, large, args.stored, args.repeats)
            print()
            print(
                table(
                    ["run", "mails/s", "CPU s", "peak RSS MB", "CPU ratio to empty", "check"], large
                )
            )


if __name__ == "__main__":
    main()
