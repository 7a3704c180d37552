"""Who holds a lease: this machine, this boot, this process — and whether that process is gone.

A lease (an outbox row claimed for sending) names its holder so that a sender that finds the
lease of a process that died on the same machine (kill -9, a power cut of the daemon's
container) takes it back at once instead of waiting for the lease to run out. A process is
identified by its pid and its start time since boot (Linux /proc), so a pid used again after a
restart — PID 1 of every container, say — is not mistaken for the holder. The holder of a
lease on another machine cannot be judged from here: its lease runs out as before.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class Holder:
    host: str
    boot: str  # the kernel's boot id, '' where there is none
    pid: int
    started: str  # the process's start time in clock ticks since boot, '' where unknown

    def __str__(self) -> str:
        return f"{self.host} {self.pid} {self.boot}/{self.started}"[:200]

    def prefix(self) -> str:
        """What every lease of this machine starts with (for a LIKE)."""
        return f"{self.host} "


def this_process() -> Holder:
    pid = os.getpid()
    return Holder(socket.gethostname().replace(" ", "")[:100], _boot(), pid, _started(pid))


def parse(text: str) -> Holder | None:
    host, _, rest = text.partition(" ")
    pid, _, stamp = rest.partition(" ")
    boot, _, started = stamp.partition("/")
    if not host or not pid.isdigit():
        return None
    return Holder(host, boot, int(pid), started)


def gone(holder: Holder, here: Holder) -> bool:
    """Whether the holder is a process of this machine that no longer runs (False when it is
    on another machine, or alive, or cannot be judged)."""
    if holder.host != here.host:
        return False
    if holder.boot and here.boot and holder.boot != here.boot:
        return True  # the machine restarted since
    if holder.pid == here.pid and holder.started == here.started:
        return False  # this very process
    started = _started(holder.pid)
    if started:  # /proc knows the pid: the holder only if it started at the same moment
        return bool(holder.started) and started != holder.started
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False


def _boot() -> str:
    try:
        return (_PROC / "sys/kernel/random/boot_id").read_text().strip()[:36]
    except OSError:
        return ""


def _started(pid: int) -> str:
    """Field 22 of /proc/PID/stat (after the command name, which may hold spaces)."""
    try:
        stat = (_PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return ""
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else ""
