"""The CPU of the notices alone: what writing one outbox row costs, and where it goes.

    .venv/bin/python bench/notices.py                  # 1,000 mails of bench/corpus.py
    .venv/bin/python bench/notices.py --mails 2000 --rounds 7

In one run: the corpus goes through `Desk.handle` into a fresh SQLite database, the notices'
inputs (incident facts, notice, occasion, thread) are recorded as `Outbox._row` sees them, and
then those notices are written again, without the database, round after round (the best round
counts; CPU time of this process). Per notice: the whole row (context, render, Message-ID,
reply address, letter), and its parts; the render also in Jinja's own SandboxedEnvironment with
the same templates and options, whose output must be the same. Warm figures: in a real ingest
the notices run between parsing and SQL, and cost about twice as much each.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jinja2.sandbox import SandboxedEnvironment  # noqa: E402

from bench.corpus import generate  # noqa: E402
from mailproc.config.settings import Settings, demo_settings  # noqa: E402
from mailproc.desk.mail import Desk  # noqa: E402
from mailproc.notify.context import build_context, reader_for  # noqa: E402
from mailproc.notify.outbox import Outbox  # noqa: E402
from mailproc.notify.templates import Templates, folder_of  # noqa: E402
from mailproc.store.db import make_engine  # noqa: E402
from mailproc.store.schema import upgrade  # noqa: E402

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
Call = tuple[tuple[Any, ...], dict[str, Any]]


def settings(database_url: str) -> Settings:
    """The demo configuration with the loop limits out of the way (held rows are not
    rendered, which would flatter the figures)."""
    base = demo_settings(environ={"MAILPROC_SECRET": "benchmark"})
    limits = base.limits.model_copy(
        update={
            "replies_per_hour": 10**6,
            "replies_per_correspondent_per_hour": 10**6,
            "new_incidents_per_sender_per_hour": 10**6,
        }
    )
    return base.model_copy(update={"database_url": database_url, "limits": limits})


@contextlib.contextmanager
def recording() -> Iterator[list[Call]]:
    """Every `Outbox._row` call's arguments while the block runs."""
    calls: list[Call] = []
    original = Outbox._row

    def record(self: Outbox, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append((args, kwargs))
        return original(self, *args, **kwargs)

    Outbox._row = record  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        Outbox._row = original  # type: ignore[method-assign]


def notices_of(config: Settings, mails: int) -> list[Call]:
    engine = make_engine(config.database_url)
    upgrade(engine)
    moments = iter(START + timedelta(seconds=n) for n in range(10**7))
    desk = Desk(config, engine, clock=lambda: next(moments))
    with recording() as calls:
        for raw, _ in generate(mails, tag="notices"):
            desk.handle(raw)
    engine.dispose()
    return calls


def best(action: Callable[[], object], rounds: int) -> float:
    """The least CPU seconds of `rounds` runs, after one to warm the caches."""
    action()
    times = []
    for _ in range(rounds):
        began = time.process_time()
        action()
        times.append(time.process_time() - began)
    return min(times)


def run(config: Settings, mails: int, rounds: int) -> None:
    calls = notices_of(config, mails)
    outbox = Outbox(config)
    readers = [reader_for(args[1], args[0], config) for args, _ in calls]
    contexts = [
        (args[1].kind, args[0].service, build_context(args[1], args[0], args[2], config, (), r), r)
        for (args, _), r in zip(calls, readers, strict=True)
    ]
    ours = outbox.templates
    reference = Templates(folder_of(config), sandbox=SandboxedEnvironment)
    for kind, service, context, reader in contexts:
        if ours.render(kind, service, context, reader.language) != reference.render(
            kind, service, context, reader.language
        ):
            raise SystemExit(f"{kind} renders differently in Jinja's own sandbox")

    def rows() -> None:
        for args, kwargs in calls:
            outbox._row(*args, **kwargs)

    def context() -> None:
        for (args, _), reader in zip(calls, readers, strict=True):
            build_context(args[1], args[0], args[2], config, (), reader=reader)

    def render(templates: Templates) -> Callable[[], None]:
        def action() -> None:
            for kind, service, context, reader in contexts:
                templates.render(kind, service, context, reader.language)

        return action

    def signing() -> None:
        for args, _ in calls:
            facts, email = args[0], args[1].recipient.email
            outbox.new_message_id(facts.number, email, "mail-support@example.com")
            outbox.reply_to_of(facts.service, facts.number, email)

    count = len(calls)
    kinds = collections.Counter(args[1].kind.value for args, _ in calls)
    print(f"{mails} mails, {count} notices ({count / mails:.2f} a mail): ", end="")
    print(", ".join(f"{kind} {n}" for kind, n in kinds.most_common()))
    print(f"best of {rounds} rounds, CPU time\n")
    print("| per notice | µs |")
    print("| --- | ---: |")
    figures = [
        ("whole outbox row (Outbox._row)", best(rows, rounds)),
        ("context (build_context)", best(context, rounds)),
        ("render, mailproc's sandbox", best(render(ours), rounds)),
        ("render, Jinja's own SandboxedEnvironment", best(render(reference), rounds)),
        ("Message-ID and reply address (signing)", best(signing, rounds)),
    ]
    for label, seconds in figures:
        print(f"| {label} | {seconds / count * 1e6:.1f} |")
    print(f"\nrender, Jinja's own sandbox / mailproc's: {figures[3][1] / figures[2][1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000, help="mails of bench/corpus.py")
    parser.add_argument("--rounds", type=int, default=5, help="rounds to time")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mailproc-bench-") as folder:
        run(settings(f"sqlite:///{folder}/bench.db"), args.mails, args.rounds)


if __name__ == "__main__":
    main()
