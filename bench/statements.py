"""The SQL statements one mail costs on the path that applies it, and the CPU of that path.

    .venv/bin/python bench/statements.py                      # the bench corpus, 2,000 mails
    .venv/bin/python bench/statements.py --corpus DIR --config mailproc.toml
    .venv/bin/python bench/statements.py --postgres           # on a PostgreSQL as well

Applies the mails with a Desk in this process, in group commits of 500 as `ingest --jobs 0`
does, into a fresh database, and counts every statement handed to the driver (SQLAlchemy's
`before_cursor_execute`, an executemany counting once): per mail, for the mails that opened an
incident and for the others, and the most frequent statements. Then the same mails again into
another fresh database without the counter, `--repeat` times: the CPU per mail of the Desk
alone (no start-up, parsing included), the least of the runs. Run it with the interpreter of
each checkout to compare two commits, alternating the runs.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, event  # noqa: E402

from bench.corpus import write as write_corpus  # noqa: E402
from mailproc.config.settings import Settings, demo_settings, load_settings  # noqa: E402
from mailproc.desk.mail import Desk  # noqa: E402
from mailproc.desk.outcome import Origin  # noqa: E402
from mailproc.store import db  # noqa: E402
from mailproc.store.schema import upgrade  # noqa: E402

GROUP = 500  # mails a group commit, as `ingest`'s --batch-size


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):  # the group's, not a mail's
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def apply(settings: Settings, url: str, mails: Sequence[bytes], seen: list[str] | None) -> float:
    """CPU seconds of applying the mails; `seen`: where to count the statements, each mail's
    and every one (the timed runs count nothing)."""
    engine = db.make_engine(url)
    upgrade(engine)
    desk = Desk(settings, engine)
    origin = Origin("ingest")
    watch: AbstractContextManager[list[str]] = nullcontext([]) if seen is None else counted(engine)
    with watch as statements:
        start = time.process_time()
        for first in range(0, len(mails), GROUP):
            with desk.batch() as handle:
                for raw in mails[first : first + GROUP]:
                    before = len(statements)
                    outcome = handle(raw, origin)
                    if seen is not None:
                        kind = "new" if outcome.summary.startswith("created") else "other"
                        seen.append(f"{kind} {len(statements) - before}")
        cpu = time.process_time() - start
        if seen is not None:
            seen.extend(f"sql {s}" for s in statements)
    engine.dispose()
    return cpu


def report(seen: list[str], mails: int, top: int) -> None:
    per: dict[str, list[int]] = collections.defaultdict(list)
    for line in seen:
        kind, _, count = line.partition(" ")
        if kind in ("new", "other"):
            per[kind].append(int(count))
    statements = [line[4:] for line in seen if line.startswith("sql ")]
    print(f"statements: {len(statements)} for {mails} mails, {len(statements) / mails:.2f} a mail")
    print("  (the group commits' BEGIN and COMMIT aside)")
    for kind, label in (("new", "mails opening an incident"), ("other", "other mails")):
        counts = per[kind]
        if counts:
            print(f"  {label}: {len(counts)}, {sum(counts) / len(counts):.2f} statements each")
    shapes = collections.Counter(
        re.sub(r"sa_savepoint_\d+", "sa_savepoint_N", re.sub(r"\s+", " ", s))[:100]
        for s in statements
    )
    print(f"the {top} most frequent:")
    for shape, times in shapes.most_common(top):
        print(f"  {times:6d}  {shape}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, help="a folder of .eml files (default: generated)")
    parser.add_argument("--mails", type=int, default=2000, help="mails of the generated corpus")
    parser.add_argument("--config", type=Path, help="default: the demo settings, limits raised")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the least counts")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--postgres", action="store_true", help="count on PostgreSQL too")
    args = parser.parse_args()
    environ = {"MAILPROC_SECRET": "bench-secret-not-for-production", **os.environ}
    if args.config is not None:
        settings = load_settings(args.config, environ)
    else:
        settings = demo_settings(environ=environ)
        raised = settings.limits.model_copy(
            update={
                "replies_per_hour": 1_000_000,
                "replies_per_correspondent_per_hour": 1_000_000,
                "new_incidents_per_sender_per_hour": 1_000_000,
            }
        )
        settings = settings.model_copy(update={"limits": raised})
    with tempfile.TemporaryDirectory(prefix="mailproc-statements-") as tmp:
        work = Path(tmp)
        folder = args.corpus or write_corpus(args.mails, work / "corpus")
        mails = [path.read_bytes() for path in sorted(folder.glob("*.eml"))]
        print(f"{len(mails)} mails from {folder}, Python {sys.version.split()[0]}")
        seen: list[str] = []
        apply(settings, f"sqlite:///{work}/counted.db", mails, seen)
        print("SQLite:")
        report(seen, len(mails), args.top)
        cpus = [
            apply(settings, f"sqlite:///{work}/timed{n}.db", mails, None)
            for n in range(args.repeat)
        ]
        runs = ", ".join(f"{c / len(mails) * 1e3:.3f}" for c in cpus)
        print(f"CPU ms a mail (Desk only, SQLite): {min(cpus) / len(mails) * 1e3:.3f} ({runs})")
        if args.postgres:
            from tests.support.servers import PostgresServer

            with PostgresServer(durable=True) as pg:
                seen = []
                apply(settings, pg.create_database("counted"), mails, seen)
                print("PostgreSQL:")
                report(seen, len(mails), args.top)


if __name__ == "__main__":
    main()
