"""One mail cannot take the desk down: `mailproc ingest` of each crafted mail
(tests/support/crafted.py) runs under an address-space limit of what ingesting a 1 KB mail
takes plus 10 × the mail's size plus 32 MiB (issue 13's bound), and must finish with the mail
processed, or quarantined for the limit it broke: never a MemoryError, never killed.

Each mail is ingested by a process of its own (a peak is per process), forked from one that
imported mailproc once (tests/support/limited.py).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.crafted import CASES
from tests.support.limited import ingested
from tests.support.mailfactory import make_mail


def test_every_crafted_mail_is_handled_within_the_per_mail_memory_bound(tmp_path: Path) -> None:
    (tmp_path / "small.eml").write_bytes(make_mail())
    for number, case in enumerate(CASES):
        (tmp_path / f"case{number}.eml").write_bytes(case.build())
    mails = [tmp_path / "small.eml", *(tmp_path / f"case{n}.eml" for n in range(len(CASES)))]
    base, *reports = ingested(tmp_path, mails, {"MAILPROC_SECRET": "memory test"}, timeout=280)
    assert base["code"] == 0 and "created INC-1" in base["output"], base
    failures = []
    for case, report in zip(CASES, reports, strict=True):
        output = report["output"]
        problem = None
        if report["code"] != 0 or "MemoryError" in output or "internal error" in output:
            problem = f"exit {report['code']} under {report['limit']:,} bytes"
        elif case.outcome == "quarantined":
            if "quarantined: over a limit: " not in output or case.reason not in output:
                problem = f"not quarantined for {case.reason!r}"
        elif "created INC-1" not in output:
            problem = "not processed"
        if problem:
            failures.append(f"{case.name}: {problem}\n{output}")
    assert not failures, "\n\n".join(failures)
