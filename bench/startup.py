"""Start-up benchmark: what one `mailproc` process costs before and around its few milliseconds
of work, against `python -c pass` on the same interpreter.

    .venv/bin/python bench/startup.py [--runs 20] [--no-postgres] [--against CHECKOUT]

Each command runs --runs times as a child process, the commands taking turns round by round so
that the machine's noise falls on all of them alike; CPU time (user + system) is the child's
own (wait4), wall time is measured around it. Printed per command: median and p90 of both, and
the median CPU as a multiple of `python -c pass`. The commands:

- `python -c pass` (the interpreter alone) and `mailproc --help`, `mailproc --version`;
- `status`, `incidents show 1`, `sla what-if` on SQLite;
- `ingest -` of one new mail (a fresh Message-ID every run), as an MTA pipe delivers it, on
  SQLite and on a durable PostgreSQL (tests/support/servers.py starts one; needs the Debian
  package, as the tests do).

The configuration is the project's example (config/mailproc.example.toml: calendars of two
countries, notifications on). Module bytecode is compiled first (`compileall`), as a pip install
does, so no run pays for compiling a module.

Then `python -X importtime` of `ingest -` (median of 3 runs): the ten packages that cost the
most import time (self time summed per package; mailproc per subpackage).

`--against CHECKOUT` runs every command also with CHECKOUT/.venv/bin/mailproc (another worktree,
e.g. at the base commit), alternated with this one's in the same rounds, and prints the ratio.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.mailfactory import make_mail  # noqa: E402
from tests.support.servers import PostgresServer  # noqa: E402

CONFIG = ROOT / "config" / "mailproc.example.toml"
PASS = "python -c pass"


@dataclass
class Target:
    """One mailproc installation (a checkout with its .venv)."""

    name: str
    checkout: Path

    @property
    def python(self) -> str:
        return str(self.checkout / ".venv" / "bin" / "python")

    @property
    def mailproc(self) -> str:
        return str(self.checkout / ".venv" / "bin" / "mailproc")


@dataclass
class Command:
    label: str
    argv: list[str]
    env: dict[str, str]
    stdin: bytes | None = None  # None: /dev/null
    mail: bool = False  # feed a fresh mail each run
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


def run_once(command: Command, serial: int) -> None:
    stdin = command.stdin
    if command.mail:
        stdin = make_mail(
            subject=f"Printer on floor {serial % 7} is jammed (run {serial})",
            message_id=f"startup-{serial}-{os.getpid()}@bench.example",
        )
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        child = subprocess.Popen(
            command.argv,
            env=command.env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        if stdin is not None:
            assert child.stdin is not None
            child.stdin.write(stdin)
            child.stdin.close()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1) or "Traceback" in stderr:  # status says 1 for "no recent poll"
        raise SystemExit(f"{command.label} failed ({code}):\n{stderr[-2000:]}")
    if command.mail and "1 processed" not in stderr:
        raise SystemExit(f"{command.label}: the mail was not processed:\n{stderr[-2000:]}")
    command.cpu.append(usage.ru_utime + usage.ru_stime)
    command.wall.append(wall)


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def environment(url: str) -> dict[str, str]:
    env = {**os.environ, "MAILPROC_DATABASE_URL": url, "MAILPROC_CONFIG": str(CONFIG)}
    env["MAILPROC_SECRET"] = "bench-secret-not-for-production"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def prepare(target: Target, env: dict[str, str]) -> None:
    """The database at the schema, with one incident for `incidents show 1`."""
    subprocess.run([target.mailproc, "init"], env=env, check=True, capture_output=True)
    one = make_mail(subject="The first incident", message_id=f"first-{target.name}@bench.example")
    subprocess.run(
        [target.mailproc, "ingest", "-q", "-"], input=one, env=env, check=True, capture_output=True
    )


def commands_of(target: Target, urls: dict[str, str]) -> list[Command]:
    sqlite = environment(urls["SQLite"])
    mp = target.mailproc
    commands = [
        Command("mailproc --help", [mp, "--help"], sqlite),
        Command("mailproc --version", [mp, "--version"], sqlite),
        Command("mailproc status", [mp, "status"], sqlite),
        Command("mailproc incidents show 1", [mp, "incidents", "show", "1"], sqlite),
        Command(
            "mailproc sla what-if",
            [mp, "sla", "what-if", "--service", "email", "--priority", "P2"],
            sqlite,
        ),
    ]
    for database, url in urls.items():
        commands.append(
            Command(
                f"ingest - of one mail, {database}",
                [mp, "ingest", "-q", "-"],
                environment(url),
                mail=True,
            )
        )
    return commands


def group_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "mailproc" else parts[0]


def import_profile(target: Target, env: dict[str, str], runs: int = 3) -> list[tuple[str, float]]:
    """Self import time per package (ms), median of `runs` runs of `ingest -`, largest first."""
    totals: dict[str, list[float]] = defaultdict(list)
    line = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
    for serial in range(runs):
        mail = make_mail(message_id=f"importtime-{serial}-{os.getpid()}@bench.example")
        done = subprocess.run(
            [target.python, "-X", "importtime", target.mailproc, "ingest", "-q", "-"],
            input=mail,
            env=env,
            capture_output=True,
            check=True,
        )
        per: dict[str, float] = defaultdict(float)
        for match in line.finditer(done.stderr.decode()):
            per[group_of(match[4])] += int(match[1]) / 1000
        per["(all imports)"] = sum(per.values())
        for name in set(per) | set(totals):
            totals[name].append(per.get(name, 0.0))
    medians = [(name, statistics.median(values)) for name, values in totals.items()]
    return sorted(medians, key=lambda item: -item[1])


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def ms(value: float) -> str:
    return f"{value * 1000:,.0f}" if value >= 0.0095 else f"{value * 1000:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--against", type=Path, help="another checkout with its .venv")
    args = parser.parse_args()

    targets = [Target("this", ROOT)]
    if args.against is not None:
        targets.append(Target("against", args.against.resolve()))
    for target in targets:
        compileall.compile_dir(target.checkout / "mailproc", quiet=1)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        work = Path(tmp)
        pass_cmd = Command(PASS, [targets[0].python, "-c", "pass"], environment("sqlite://"))
        pg = None if args.no_postgres else stack.enter_context(PostgresServer(durable=True))
        lists: list[list[Command]] = []
        for target in targets:
            urls = {"SQLite": f"sqlite:///{work}/{target.name}.db"}
            if pg is not None:
                urls["PostgreSQL"] = pg.create_database(f"startup_{target.name}")
            for url in urls.values():
                prepare(target, environment(url))
            lists.append(commands_of(target, urls))
        order = [pass_cmd, *(command for same in zip(*lists, strict=True) for command in same)]
        for round_ in range(args.runs):
            for serial, command in enumerate(order):
                run_once(command, round_ * len(order) + serial)
        profile = import_profile(targets[0], environment(f"sqlite:///{work}/this.db"))

    base = statistics.median(pass_cmd.cpu)
    head = [
        "command",
        "wall ms (median)",
        "wall ms (p90)",
        "CPU ms (median)",
        "CPU ms (p90)",
        "CPU × pass",
    ]
    if len(targets) > 1:
        head += ["CPU ms, against", "CPU this/against", "wall this/against"]
    rows = [head]
    for index, command in enumerate([pass_cmd, *lists[0]]):
        cpu, wall = statistics.median(command.cpu), statistics.median(command.wall)
        row = [
            command.label,
            ms(wall),
            ms(p90(command.wall)),
            ms(cpu),
            ms(p90(command.cpu)),
            f"{cpu / base:.1f}",
        ]
        if len(targets) > 1:
            other = lists[1][index - 1] if index else command
            ocpu, owall = statistics.median(other.cpu), statistics.median(other.wall)
            row += [ms(ocpu), f"{cpu / ocpu:.2f}", f"{wall / owall:.2f}"]
        rows.append(row)
    print(
        f"# mailproc start-up, {date.today()}, {platform.node()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}), {args.runs} runs each, commands alternated"
    )
    print(table(rows))
    print()
    print(
        "Import time of `ingest -` of one mail (SQLite), self time summed per package, median of 3:"
    )
    top = [["package", "ms"]] + [[name, f"{value:.1f}"] for name, value in profile[:11]]
    print(table(top))


if __name__ == "__main__":
    main()
