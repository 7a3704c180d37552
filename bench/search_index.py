"""What keeping `incidents search` current costs the Desk on SQLite: a row of words in the FTS5
table `events_search` for each created, comment and note event (mailproc.store.db.Rows).

The same corpus (bench/corpus.py) goes through `Desk.batch` into fresh SQLite databases, with
and without those rows (`Rows.add_words` made a no-op), the runs alternated; it prints the
median time per mail of each and their ratio, and what one search costs with the index.

    .venv/bin/python bench/search_index.py [--mails 1000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.corpus import generate
from mailproc.config.settings import demo_settings
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Origin
from mailproc.store.db import Rows, make_engine
from mailproc.store.schema import upgrade
from mailproc.store.search import search


def one_run(mails: list[bytes], folder: Path, indexed: bool) -> float:
    """Seconds per mail for the corpus into a fresh database."""
    settings = demo_settings(environ={"MAILPROC_SECRET": "bench"}).model_copy(
        update={"database_url": f"sqlite:///{folder / f'{indexed}-{time.time_ns()}.db'}"}
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    add_words = Rows.add_words
    if not indexed:
        Rows.add_words = lambda *args, **kwargs: None  # type: ignore[method-assign]
    desk = Desk(settings, engine)
    started = time.perf_counter()
    for start in range(0, len(mails), 100):
        with desk.batch() as handle:
            for raw in mails[start : start + 100]:
                handle(raw, Origin("bench"))
    elapsed = (time.perf_counter() - started) / len(mails)
    Rows.add_words = add_words  # type: ignore[method-assign]
    if indexed:
        begun = time.perf_counter()
        for _ in range(20):
            search(engine, "printer offline")
        per_search = (time.perf_counter() - begun) / 20
        print(f"  one search over {len(mails)} mails: {per_search * 1e3:.2f} ms")
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    mails = [raw for raw, _ in generate(args.mails)]
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            for indexed in (False, True):
                times[indexed].append(one_run(mails, Path(folder), indexed))
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    print(f"Desk.handle, SQLite, {args.mails} mails, median of {args.runs} alternating runs:")
    print(f"  without the search rows:    {without * 1e3:.2f} ms/mail")
    print(f"  with it:                    {with_ * 1e3:.2f} ms/mail")
    print(f"  ratio with/without:         {with_ / without:.3f}")


if __name__ == "__main__":
    main()
