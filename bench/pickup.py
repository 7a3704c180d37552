"""Benchmark: how fast the daemon picks up mail, and how it copes with a large backlog.

    .venv/bin/python bench/pickup.py [--database sqlite|postgresql] [--samples 40]
                                     [--backlog 10000] [--poll-seconds 1]
                                     [--backlog-only] [--against CHECKOUT] [--repeats N]

Starts its own Dovecot (tests/servers.py; needs root and dovecot-imapd, as the tests do) and,
for --database postgresql, a durable PostgreSQL cluster (fsync on). Runs `mailproc run` as a
child process, exactly as in production, and measures from the outside:

1. pickup latency: from the end of an IMAP APPEND to the committed incident, median and p95,
   once under IDLE and once with IDLE off (polling every --poll-seconds);
2. a backlog of --backlog mails waiting when the daemon starts: mails per second (first to
   last commit, the stored mails counted every 20 ms from outside), and the daemon's peak RSS,
   next to the peak RSS for a tenth of the backlog, as a ratio from the same run: flat memory
   means a ratio near 1;
3. the same --backlog mails ingested from a folder (`mailproc ingest DIR`), mails per second
   measured the same way, and the daemon's rate as a share of it.

--backlog-only skips 1 and the tenth; --against CHECKOUT runs 2 and 3 also with that checkout's
.venv (e.g. a worktree at the base commit), in the same run; --repeats N does 2 and 3 N times,
the checkouts' order alternated round by round, and prints the median share (on a shared
machine single rounds differ by a third).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from mailproc.store import db  # noqa: E402
from mailproc.store.db import make_engine  # noqa: E402
from mailproc.store.schema import upgrade  # noqa: E402
from tests.support.mailfactory import make_mail  # noqa: E402
from tests.support.servers import DovecotServer, PostgresServer  # noqa: E402

PASSWORD = "bench-pass"
PYTHON = sys.executable


def config_text(database_url: str, port: int, **source: object) -> str:
    lines = [
        'support_address = "support@example.com"',
        'default_service = "general"',
        f"database_url = {json.dumps(database_url)}",
        "[services.general]",
        "[sources.support]",
        'kind = "imap"',
        'host = "127.0.0.1"',
        f"port = {port}",
        'security = "plain"',
        'username = "support"',
        'password_env = "BENCH_IMAP_PASSWORD"',
        *(f"{key} = {json.dumps(value)}" for key, value in source.items()),
        "[limits]",  # a backlog read in a minute would open the storm breaker
        "replies_per_hour = 1000000",
        "replies_per_correspondent_per_hour = 1000000",
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def daemon(workdir: Path, text: str, python: str = PYTHON) -> Iterator[subprocess.Popen[bytes]]:
    config = workdir / "mailproc.toml"
    config.write_text(text)
    log = (workdir / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [python, "-m", "mailproc", "--config", str(config), "--log-level", "WARNING", "run"],
        env={**os.environ, "BENCH_IMAP_PASSWORD": PASSWORD, "MAILPROC_SECRET": "bench"},
        stdout=log,
        stderr=log,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


def stored(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(db.Message)) or 0)


def wait_for(engine: Engine, count: int, timeout: float, step: float = 0.001) -> float:
    deadline = time.monotonic() + timeout
    while stored(engine) < count:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {count} stored mails")
        time.sleep(step)
    return time.monotonic()


def fresh_database(kind: str, stack: ExitStack, workdir: Path, name: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / f'{name}.sqlite3'}"
    pg = stack.enter_context(PostgresServer(durable=True))
    return pg.create_database(name)


def pickup(
    server: DovecotServer, url: str, workdir: Path, samples: int, spread: float, **source: object
) -> list[float]:
    """Latencies in seconds from the end of each APPEND to the commit of its mail."""
    engine = make_engine(url)
    upgrade(engine)
    server.account("support").reset()
    client = server.connect("support")
    latencies = []
    with daemon(workdir, config_text(url, server.port, **source)):
        client.append("INBOX", make_mail(subject="warm-up"))
        wait_for(engine, 1, 30)
        for n in range(samples):
            time.sleep(random.uniform(0.05, 0.05 + spread))  # out of step with polling
            client.append("INBOX", make_mail(subject=f"pickup {n}", sender=f"p{n}@example.org"))
            appended = time.monotonic()
            latencies.append(wait_for(engine, n + 2, 30) - appended)
    client.logout()
    engine.dispose()
    return latencies


def backlog_mails(size: int) -> list[bytes]:
    # one sender each: many from one would meet the per-sender limit
    return [
        make_mail(subject=f"backlog {n}", body="x" * 2000, sender=f"u{n}@example.org")
        for n in range(size)
    ]


def backlog(
    server: DovecotServer, url: str, workdir: Path, mails: list[bytes], python: str = PYTHON
) -> tuple[float, int]:
    """Mails per second through a backlog of `mails`, and the daemon's peak RSS in KiB."""
    engine = make_engine(url)
    upgrade(engine)
    server.account("support").reset()
    client = server.connect("support")
    for start in range(0, len(mails), 500):
        client.multiappend("INBOX", mails[start : start + 500])
    client.logout()
    with daemon(workdir, config_text(url, server.port), python) as proc:
        rate = watched_rate(engine, len(mails))
        peak = peak_rss_kib(proc.pid)
    engine.dispose()
    return rate, peak


def from_folder(url: str, workdir: Path, mails: list[bytes], python: str = PYTHON) -> float:
    """Mails per second when `mailproc ingest` reads the same mails from a folder."""
    engine = make_engine(url)
    upgrade(engine)
    folder = workdir / "folder"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for n, raw in enumerate(mails):
        (folder / f"{n:06d}.eml").write_bytes(raw)
    config = workdir / "mailproc.toml"
    config.write_text(config_text(url, 1))
    ingest = subprocess.Popen(
        [python, "-m", "mailproc", "--config", str(config), "ingest", "-q", str(folder)],
        env={**os.environ, "MAILPROC_SECRET": "bench"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rate = watched_rate(engine, len(mails))
    if ingest.wait() != 0:
        raise SystemExit(f"ingest of the folder failed ({ingest.returncode})")
    engine.dispose()
    return rate


def watched_rate(engine: Engine, size: int, step: float = 0.02) -> float:
    """Mails per second from the first commit seen to the last, the stored mails counted every
    `step` seconds from outside (`received_at` has whole seconds: too coarse for a backlog of
    a few seconds)."""
    deadline = time.monotonic() + 3600
    while (first := stored(engine)) == 0:
        if time.monotonic() > deadline:
            raise SystemExit("no mail stored within the hour")
        time.sleep(step)
    start = time.monotonic()
    end = wait_for(engine, size, 3600, step=step)
    return (size - first) / max(end - start, 1e-9)


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM in /proc")


def describe(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--poll-seconds", type=float, default=1.0)
    parser.add_argument("--backlog-only", action="store_true")
    parser.add_argument("--against", type=Path, help="another checkout with its .venv")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of 2 and 3, alternated")
    args = parser.parse_args()
    pythons = {"this": PYTHON}
    if args.against is not None:
        pythons["against"] = str(args.against.resolve() / ".venv" / "bin" / "python")
    mails = backlog_mails(args.backlog)
    print(f"mailproc pickup benchmark ({args.database}, {os.cpu_count()} CPUs)")
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="mailproc-bench-") as tmp:
        workdir = Path(tmp)
        server = stack.enter_context(DovecotServer({"support": PASSWORD}, tls=False))
        urls = iter(fresh_database(args.database, stack, workdir, f"b{n}") for n in range(99))
        if not args.backlog_only:
            latencies(server, urls, workdir, args)
            tenth = mails[: args.backlog // 10]
            small_rate, small_rss = backlog(server, next(urls), workdir, tenth)
            print(
                f"  backlog of {len(tenth):>6} mails   {small_rate:7.0f} mails/s   "
                f"peak RSS {small_rss / 1024:6.1f} MiB"
            )
        shares: dict[str, list[float]] = {name: [] for name in pythons}
        for round_ in range(args.repeats):
            names = list(pythons)[:: -1 if round_ % 2 else 1]  # alternated: no one always first
            for name in names:
                python = pythons[name]
                rate, rss = backlog(server, next(urls), workdir, mails, python)
                folder = from_folder(next(urls), workdir, mails, python)
                shares[name].append(rate / folder)
                print(
                    f"  [{name}] backlog of {args.backlog:>6} mails   {rate:7.0f} mails/s   "
                    f"peak RSS {rss / 1024:6.1f} MiB"
                    + ("" if args.backlog_only else f"   ({rss / small_rss:.2f}x the tenth's)")
                )
                print(
                    f"  [{name}] the same mails by `ingest DIR`  {folder:7.0f} mails/s   "
                    f"daemon / ingest {rate / folder:.2f}",
                    flush=True,
                )
        if args.repeats > 1:
            for name, found in shares.items():
                listed = " ".join(f"{share:.2f}" for share in found)
                median = statistics.median(found)
                print(f"  [{name}] daemon / ingest: median {median:.2f} ({listed})")


def latencies(server: DovecotServer, urls: Iterator[str], workdir: Path, args: Any) -> None:
    spread = args.poll_seconds
    idle = pickup(server, next(urls), workdir, args.samples, spread)
    polling = pickup(
        server,
        next(urls),
        workdir,
        args.samples,
        spread,
        idle=False,
        poll_seconds=args.poll_seconds,
    )
    print(f"  pickup under IDLE                     {describe(idle)}")
    print(f"  pickup polling every {args.poll_seconds:g}s              {describe(polling)}")


if __name__ == "__main__":
    main()
