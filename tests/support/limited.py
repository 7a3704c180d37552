"""Run `mailproc ingest` of mails, each in a forked process of its own under an address-space
limit, and report every process's peaks: for the memory test and benchmark
(tests/cli/test_memory.py, bench/memory.py).

    python tests/support/limited.py DATABASE_TEMPLATE BASELINE.eml [MAIL.eml ...]

mailproc is imported once, then each mail is ingested by a fork with a copy of the template
database: the children start at the same size, so their peaks compare, and no child pays for
the imports. The baseline mail (1 KB) runs without a limit; each further mail under the
baseline's peak address space + FACTOR × its size + SLACK (environment MEMORY_FACTOR,
MEMORY_SLACK_MIB; 10 and 32 by default, issue 13's bound; FACTOR 0: no limit). One JSON line
per mail on stdout: its file, size, limit, the child's exit code, VmPeak and peak RSS (bytes),
and what ingest printed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def _peak_address_space() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def _child(mail: Path, database: Path, limit: int, out: int) -> None:
    """In the fork: ingest the mail, write what it printed and the peak to `out`, exit."""
    code = 0
    capture = tempfile.TemporaryFile()  # noqa: SIM115 (the fork ends with os._exit)
    os.dup2(capture.fileno(), 1)
    os.dup2(capture.fileno(), 2)
    try:
        if limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.environ["MAILPROC_DATABASE_URL"] = f"sqlite:///{database}"
        from mailproc.cli import main

        sys.argv = ["mailproc", "ingest", "--jobs", "0", str(mail)]
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # MemoryError included: the parent reports it
        code = 99
        print(f"{type(exc).__name__}: {exc}", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    capture.seek(0)
    text = capture.read().decode(errors="replace")
    report = {"code": code, "vmpeak": _peak_address_space(), "output": text}
    os.write(out, json.dumps(report).encode())
    os._exit(0)


def run(mail: Path, template: Path, limit: int, number: int) -> dict[str, object]:
    database = template.with_name(f"mail{number}.sqlite3")  # beside the template, not the mail
    shutil.copyfile(template, database)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        _child(mail, database, limit, write)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    _, status, usage = os.wait4(pid, 0)
    report: dict[str, object] = {"code": -1, "vmpeak": 0, "output": ""}
    if chunks:
        report = json.loads(b"".join(chunks))
    if os.WIFSIGNALED(status):
        report["code"] = -os.WTERMSIG(status)
    return {
        "file": str(mail),
        "size": mail.stat().st_size,
        "limit": limit,
        "maxrss": usage.ru_maxrss * 1024,
        **report,
    }


def main() -> None:
    template, baseline, *mails = (Path(a) for a in sys.argv[1:])
    factor = int(os.environ.get("MEMORY_FACTOR", "10"))
    slack = int(os.environ.get("MEMORY_SLACK_MIB", "32")) * 1024 * 1024
    import mailproc.cli.ingest  # noqa: F401  (imported once, before the forks)

    base = run(baseline, template, 0, 0)
    print(json.dumps(base), flush=True)
    for number, mail in enumerate(mails, 1):
        peak = base["vmpeak"]
        assert isinstance(peak, int)
        limit = peak + factor * mail.stat().st_size + slack if factor else 0
        print(json.dumps(run(mail, template, limit, number)), flush=True)


def ingested(
    work: Path, mails: list[Path], environ: dict[str, str], timeout: float | None = None
) -> list[dict[str, object]]:
    """This script run on `mails` (the first is the baseline) against a fresh database of the
    demo configuration in `work`, as the test and the benchmark need it: one report per mail.
    `environ` is added to the script's environment (MAILPROC_SECRET, MEMORY_FACTOR, …)."""
    root = Path(__file__).parents[2]
    config = work / "mailproc.toml"  # the demo's configuration
    config.write_text((root / "mailproc" / "config" / "default_config.toml").read_text())
    database = work / "empty.sqlite3"
    env = {
        **os.environ,
        "MAILPROC_DATABASE_URL": f"sqlite:///{database}",
        "MAILPROC_CONFIG": str(config),
    }
    subprocess.run([sys.executable, "-m", "mailproc", "init"], env=env, check=True, cwd=work)
    done = subprocess.run(
        [sys.executable, __file__, str(database), *map(str, mails)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(root), **environ},
        cwd=work,
        timeout=timeout,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


if __name__ == "__main__":
    main()
