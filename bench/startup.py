"""Start-up benchmark: what one `mailproc` process costs before and around its few milliseconds
of work, against `python -c pass` on the same interpreter.

    .venv/bin/python bench/startup.py [--runs 20] [--no-postgres] [--against CHECKOUT]

Each command runs --runs times as a child process, the commands taking turns round by round so
that the machine's noise falls on all of them alike; CPU time (user + system) is the child's
own (wait4), wall time is measured around it. Printed per command: median and p90 of both, and
the median CPU as a multiple of `python -c pass`. The commands:

- `python -c pass` (the interpreter alone) and `mailproc --help`, `mailproc --version`;
- `status`, `incidents show 1`, `sla what-if` on SQLite;
- `ingest -` of one new mail (a fresh Message-ID and sender every run), as an MTA pipe delivers
  it, on SQLite and on a durable PostgreSQL (tests/support/servers.py starts one; needs the
  Debian package, as the tests do);
- `ingest -` of one mail handed to a running daemon through `daemon.socket` (SQLite): the pipe's
  own CPU, and the daemon's CPU for the mail (the change in its threads' run time,
  /proc/PID/task/*/schedstat, around each run), and the two together.

The configuration is the project's example (config/mailproc.example.toml: calendars of two
countries, notifications on) without its mail sources and with the loop limits raised, as the
peer benchmark has it. Module bytecode is compiled first (`compileall`), as a pip install does,
so no run pays for compiling a module; the settings and template caches are warm after the
untimed set-up, as they are on a running system.

Then `python -X importtime` of `ingest -` (median of 3 runs, stored by the process itself): the
packages that cost the most import time (self time summed per package; mailproc per
subpackage).

`--against CHECKOUT` runs every command also with CHECKOUT/.venv/bin/mailproc (another worktree,
e.g. at the base commit), alternated with this one's in the same rounds, and prints the ratio;
the socket rows are this checkout's only.
"""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.mailfactory import make_mail  # noqa: E402
from tests.support.servers import PostgresServer  # noqa: E402

EXAMPLE = Path("config", "mailproc.example.toml")
PASS = "python -c pass"
LIMITS = ("replies_per_hour", "replies_per_correspondent_per_hour")
LIMITS += ("new_incidents_per_sender_per_hour",)


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
    mail: bool = False  # feed a fresh mail each run
    daemon: int | None = None  # the pid of a daemon whose CPU for the run is counted too
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    daemon_cpu: list[float] = field(default_factory=list)


def config_text(checkout: Path, socket: Path | None = None) -> str:
    """The checkout's example without its mail sources, the loop limits out of the way, and
    for the daemon its socket and no attempt to send (no SMTP server here)."""
    text = (checkout / EXAMPLE).read_text().split("\n# Mail sources:", 1)[0]
    for key in LIMITS:
        text = re.sub(rf"(?m)^{key} = \d+", f"{key} = 1000000", text)
    if socket is not None:
        text = text.replace('# socket = "/run/mailproc/ingest.sock"', f'socket = "{socket}"')
        text = re.sub(r"(?m)^send_outbox_seconds = \d+", "send_outbox_seconds = 86400", text)
    return text


def run_once(command: Command, serial: int) -> None:
    stdin = None
    if command.mail:
        stdin = make_mail(
            subject=f"Printer on floor {serial % 7} is jammed (run {serial})",
            sender=f"User {serial} <user{serial}@customer.example.org>",
            message_id=f"startup-{serial}-{os.getpid()}@bench.example",
        )
    before = daemon_seconds(command.daemon) if command.daemon else 0.0
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
    if command.daemon:
        command.daemon_cpu.append(daemon_seconds(command.daemon) - before)
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1) or "Traceback" in stderr:  # status says 1 for "no recent poll"
        raise SystemExit(f"{command.label} failed ({code}):\n{stderr[-2000:]}")
    if command.mail and "1 processed" not in stderr:
        raise SystemExit(f"{command.label}: the mail was not processed:\n{stderr[-2000:]}")
    command.cpu.append(usage.ru_utime + usage.ru_stime)
    command.wall.append(wall)


def daemon_seconds(pid: int) -> float:
    """CPU seconds the process's threads have run (schedstat: nanoseconds, not clock ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def environment(url: str, config: Path) -> dict[str, str]:
    env = {**os.environ, "MAILPROC_DATABASE_URL": url, "MAILPROC_CONFIG": str(config)}
    env["MAILPROC_SECRET"] = "bench-secret-not-for-production"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def prepare(target: Target, env: dict[str, str]) -> None:
    """The database at the schema, with one incident for `incidents show 1`; the caches warm."""
    subprocess.run([target.mailproc, "init"], env=env, check=True, capture_output=True)
    one = make_mail(subject="The first incident", message_id=f"first-{target.name}@bench.example")
    subprocess.run(
        [target.mailproc, "ingest", "-q", "-"], input=one, env=env, check=True, capture_output=True
    )


def commands_of(target: Target, urls: dict[str, str], config: Path) -> list[Command]:
    sqlite = environment(urls["SQLite"], config)
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
                environment(url, config),
                mail=True,
            )
        )
    return commands


@contextmanager
def daemon(target: Target, url: str, config: Path, socket: Path) -> Iterator[int]:
    """`mailproc run` listening on `socket`; its pid."""
    env = environment(url, config)
    log = (config.parent / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [target.mailproc, "--log-level", "WARNING", "run"], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"the daemon did not listen: see {log.name}")
            time.sleep(0.05)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        log.close()


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
        with_socket, socket = work / "socket.toml", work / "in.sock"
        with_socket.write_text(config_text(ROOT, socket))
        pass_cmd = Command(
            PASS, [targets[0].python, "-c", "pass"], environment("sqlite://", with_socket)
        )
        pg = None if args.no_postgres else stack.enter_context(PostgresServer(durable=True))
        lists: list[list[Command]] = []
        for target in targets:
            config = work / f"{target.name}.toml"
            config.write_text(config_text(target.checkout))
            urls = {"SQLite": f"sqlite:///{work}/{target.name}.db"}
            if pg is not None:
                urls["PostgreSQL"] = pg.create_database(f"startup_{target.name}")
            for url in urls.values():
                prepare(target, environment(url, config))
            lists.append(commands_of(target, urls, config))
        handed_url = f"sqlite:///{work}/handed.db"
        prepare(targets[0], environment(handed_url, with_socket))
        pid = stack.enter_context(daemon(targets[0], handed_url, with_socket, socket))
        handed = Command(
            "ingest - handed to the daemon, SQLite",
            [targets[0].mailproc, "ingest", "-q", "-"],
            environment(handed_url, with_socket),
            mail=True,
            daemon=pid,
        )
        order = [pass_cmd, *(command for same in zip(*lists, strict=True) for command in same)]
        order.append(handed)
        for round_ in range(args.runs):
            for serial, command in enumerate(order):
                run_once(command, round_ * len(order) + serial)
        this = environment(f"sqlite:///{work}/this.db", work / "this.toml")
        profile = import_profile(targets[0], this)

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
        rows.append(row(command.label, command.wall, command.cpu, base))
        if len(targets) > 1:
            other = lists[1][index - 1] if index else command
            ocpu, owall = statistics.median(other.cpu), statistics.median(other.wall)
            cpu, wall = statistics.median(command.cpu), statistics.median(command.wall)
            rows[-1] += [ms(ocpu), f"{cpu / ocpu:.2f}", f"{wall / owall:.2f}"]
    together = [c + d for c, d in zip(handed.cpu, handed.daemon_cpu, strict=True)]
    for label, cpu in (
        (f"{handed.label}: the pipe", handed.cpu),
        ("  … the daemon's CPU for the mail", handed.daemon_cpu),
        ("  … pipe and daemon together", together),
    ):
        rows.append(row(label, handed.wall, cpu, base) + ["-"] * (len(head) - 6))
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


def row(label: str, wall: Sequence[float], cpu: Sequence[float], base: float) -> list[str]:
    median = statistics.median(cpu)
    return [
        label,
        ms(statistics.median(wall)),
        ms(p90(wall)),
        ms(median),
        ms(p90(cpu)),
        f"{median / base:.1f}",
    ]


if __name__ == "__main__":
    main()
