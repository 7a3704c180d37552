"""The daemon beside the peer benchmark's `mailproc-pipe` slot (see bench/peer-handoff.sh).

    python3 bench/peer_daemon.py start WORK CONFIG MAILPROC   # untimed set-up of a run
    python3 bench/peer_daemon.py stop WORK                    # before the run's export

`start` runs `MAILPROC --config CONFIG run` on WORK/m.db, waits for its socket and notes the
daemon's CPU so far; `stop` notes it again, writes the difference (seconds: what the daemon
spent on the run's mails, which the harness does not time) to WORK/daemon-cpu.txt, and stops
the daemon. Standard library only, like the harness.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """Run time of the process's threads (schedstat: nanoseconds, not clock ticks)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks) / 1e9


def start(work: Path, config: Path, mailproc: str) -> None:
    socket = Path(tomllib.loads(config.read_text())["daemon"]["socket"])
    env = {**os.environ, "MAILPROC_DATABASE_URL": f"sqlite:///{work}/m.db"}
    subprocess.run([mailproc, "--config", str(config), "init"], env=env, check=True)
    with (work / "daemon.log").open("wb") as log:
        daemon = subprocess.Popen(
            [mailproc, "--config", str(config), "--log-level", "WARNING", "run"],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    while not socket.exists():
        if daemon.poll() is not None:
            sys.exit(f"the daemon ended: see {work}/daemon.log")
        time.sleep(0.05)
    (work / "daemon.pid").write_text(str(daemon.pid))
    (work / "daemon-cpu-start.txt").write_text(str(cpu_seconds(daemon.pid)))


def stop(work: Path) -> None:
    pid = int((work / "daemon.pid").read_text())
    spent = cpu_seconds(pid) - float((work / "daemon-cpu-start.txt").read_text())
    (work / "daemon-cpu.txt").write_text(f"{spent:.3f}\n")
    os.kill(pid, signal.SIGTERM)
    while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0]
    except (FileNotFoundError, IndexError):
        return "zombie"


if __name__ == "__main__":
    if sys.argv[1] == "start":
        start(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
    else:
        stop(Path(sys.argv[2]))
