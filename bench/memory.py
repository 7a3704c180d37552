"""Peak memory of `mailproc ingest` per mail, against issue 13's bound.

    .venv/bin/python bench/memory.py

Each mail is ingested (SQLite) by a process of its own, forked from one that imported mailproc
once (tests/support/limited.py), so every peak is that one mail's. The table gives each mail's
peak RSS, how much more that is than ingesting a 1 KB mail, and the bound: 10 × its size +
32 MiB. Rows: the largest peak over the real-mail corpus of the tests (tests/data/mail) and a
sample of the benchmark corpus, then each crafted mail (tests/support/crafted.py).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.corpus import write as write_corpus  # noqa: E402
from tests.support.crafted import CASES  # noqa: E402
from tests.support.limited import ingested  # noqa: E402
from tests.support.mailfactory import make_mail  # noqa: E402

MiB = 1024 * 1024


def main() -> None:
    python = sys.version.split()[0]
    print(f"machine: {os.cpu_count()} cores, Python {python}, {time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory(prefix="mailproc-memory-") as tmp:
        work = Path(tmp)
        small = work / "small.eml"
        small.write_bytes(make_mail())
        corpus = sorted((ROOT / "tests" / "data" / "mail").glob("*.eml"))
        sample = sorted(write_corpus(200, work / "corpus").glob("*.eml"))[::20]
        crafted = []
        for number, case in enumerate(CASES):
            path = work / f"crafted{number}.eml"
            path.write_bytes(case.build())
            crafted.append(path)
        mails = [small, *corpus, *sample, *crafted]
        base, *reports = ingested(work, mails, {"MAILPROC_SECRET": "bench", "MEMORY_FACTOR": "0"})
        base_rss = int(base["maxrss"])  # type: ignore[call-overload]
        print(f"1 KB mail: peak RSS {base_rss / MiB:.0f} MiB")
        rows = []
        real = reports[: len(corpus) + len(sample)]
        worst = max(real, key=lambda r: int(r["maxrss"]) - base_rss)  # type: ignore[call-overload]
        rows.append(
            _row(
                f"real mail, largest of {len(real)} ({Path(str(worst['file'])).name})",
                worst,
                base_rss,
            )
        )
        for case, report in zip(CASES, reports[len(real) :], strict=True):
            rows.append(_row(case.name, report, base_rss))
        header = ["mail", "size MiB", "peak RSS MiB", "over 1 KB mail MiB", "bound MiB", "result"]
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for line in [header, ["-" * w for w in widths], *rows]:
            print(
                "| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
            )


def _row(label: str, report: dict[str, object], base_rss: int) -> list[str]:
    size, rss = int(report["size"]), int(report["maxrss"])  # type: ignore[call-overload]
    over, bound = rss - base_rss, 10 * size + 32 * MiB
    output = str(report["output"])
    outcome = "quarantined" if "quarantined: " in output else "processed"
    verdict = "within" if over <= bound and report["code"] == 0 else "OVER"
    return [
        label,
        f"{size / MiB:.1f}",
        f"{rss / MiB:.0f}",
        f"{over / MiB:.0f}",
        f"{bound / MiB:.0f}",
        f"{verdict}, {outcome}",
    ]


if __name__ == "__main__":
    main()
