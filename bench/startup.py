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
- `ingest -` of one mail handed to a running daemon through `daemon.socket` (SQLite), and
  `status`, `incidents show 1`, `sla what-if` run by its command server (`daemon.command_socket`):
  the asking process's own CPU, the daemon's for it (for the mail: the change in its threads' run
  time, /proc/PID/task/*/schedstat; for a command: the fork's, as the server logs it at DEBUG,
  and the server's own), and the two together.

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
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Protocol

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
    helper: Helper | None = None  # the daemon or its command server, whose CPU counts too
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    helper_cpu: list[float] = field(default_factory=list)


class Helper(Protocol):
    def before(self) -> None: ...

    def spent(self) -> float:
        """CPU seconds spent on the run since before()."""


@dataclass
class DaemonThreads:
    """The daemon's CPU: its threads' run time (schedstat: nanoseconds, not clock ticks)."""

    pid: int
    start: float = 0.0

    def seconds(self) -> float:
        tasks = Path(f"/proc/{self.pid}/task").iterdir()
        return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks) / 1e9

    def before(self) -> None:
        self.start = self.seconds()

    def spent(self) -> float:
        return self.seconds() - self.start


@dataclass
class ServerForks:
    """The command server's CPU for a command: what its fork spent, as the server logs it when
    it collects the fork ("… after N ms of CPU", at DEBUG), and the server's own for the fork."""

    log: Path
    server: DaemonThreads | None = None
    seen: int = 0

    def forks(self) -> list[float]:
        text = self.log.read_text(errors="replace")
        return [float(ms) / 1000 for ms in re.findall(r"after ([\d.]+) ms of CPU", text)]

    def before(self) -> None:
        if self.server is None:
            self.server = DaemonThreads(server_pid(self.log))
        self.seen = len(self.forks())
        self.server.before()

    def spent(self) -> float:
        deadline = time.monotonic() + 10
        while len(found := self.forks()) <= self.seen:  # collected a moment after it answered
            if time.monotonic() > deadline:
                raise SystemExit(f"the command server logged no fork: see {self.log}")
            time.sleep(0.01)
        assert self.server is not None
        return found[self.seen] + self.server.spent()


def server_pid(log: Path) -> int:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with suppress(OSError):
                if b"serve-commands" in (proc / "cmdline").read_bytes():
                    return int(proc.name)
    raise SystemExit(f"no command server running: see {log}")


def config_text(checkout: Path, socket: Path | None = None) -> str:
    """The checkout's example without its mail sources, the loop limits out of the way, and
    for the daemon its socket and no attempt to send (no SMTP server here)."""
    text = (checkout / EXAMPLE).read_text().split("\n# Mail sources:", 1)[0]
    for key in LIMITS:
        text = re.sub(rf"(?m)^{key} = \d+", f"{key} = 1000000", text)
    if socket is not None:
        text = text.replace('# socket = "/run/mailproc/ingest.sock"', f'socket = "{socket}"')
        text = text.replace(
            '# command_socket = "/run/mailproc/commands.sock"',
            f'command_socket = "{socket.with_name("commands.sock")}"',
        )
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
    if command.helper is not None:
        command.helper.before()
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
    if command.helper is not None:
        command.helper_cpu.append(command.helper.spent())
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


def helped_commands(target: Target, env: dict[str, str], pid: int, work: Path) -> list[Command]:
    """`ingest -` handed to the daemon, and the quick commands run by its command server."""
    mp = target.mailproc
    forks = ServerForks(work / "daemon.log")
    what_if = ["sla", "what-if", "--service", "email", "--priority", "P2"]
    show = ["incidents", "show", "1"]
    return [
        Command(
            "ingest - handed to the daemon, SQLite: the pipe",
            [mp, "ingest", "-q", "-"],
            env,
            mail=True,
            helper=DaemonThreads(pid),
        ),
        Command("mailproc status, served", [mp, "status"], env, helper=forks),
        Command("mailproc incidents show 1, served", [mp, *show], env, helper=forks),
        Command("mailproc sla what-if, served", [mp, *what_if], env, helper=forks),
    ]


@contextmanager
def daemon(target: Target, url: str, config: Path, socket: Path) -> Iterator[int]:
    """`mailproc run` listening on `socket`; its pid."""
    env = environment(url, config)
    log = (config.parent / "daemon.log").open("ab")
    proc = subprocess.Popen(
        [target.mailproc, "--log-level", "DEBUG", "run"], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while not (socket.exists() and socket.with_name("commands.sock").exists()):
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
        helped = helped_commands(targets[0], environment(handed_url, with_socket), pid, work)
        order = [pass_cmd, *(command for same in zip(*lists, strict=True) for command in same)]
        order += helped
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
    for command in helped:
        together = [c + d for c, d in zip(command.cpu, command.helper_cpu, strict=True)]
        for label, cpu in (
            (command.label, command.cpu),
            ("  … the daemon's CPU for it", command.helper_cpu),
            ("  … both together", together),
        ):
            rows.append(row(label, command.wall, cpu, base) + ["-"] * (len(head) - 6))
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
