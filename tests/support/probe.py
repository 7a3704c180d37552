"""Run the `mailproc` entry point in a fresh interpreter, as an MTA pipe or a probe runs it,
and see what it printed and which modules it had loaded when it exited."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Runs the real entry point (as the `mailproc` script does: arguments from sys.argv), then
# writes the modules it loaded to the file named first.
PROBE = """
import sys
out = sys.argv.pop(1)
try:
    from mailproc.cli import main
    main()
finally:
    with open(out, "w") as handle:
        handle.write("\\n".join(sorted(sys.modules)))
"""


@dataclass(frozen=True)
class Probed:
    code: int
    stdout: str
    stderr: str
    modules: frozenset[str]


def probe(folder: Path, args: Iterable[str], stdin: bytes = b"", **env: str) -> Probed:
    """`mailproc ARGS` in `folder`, with only PATH, a secret, a cache in `folder` and `env`."""
    out = folder / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        input=stdin,
        capture_output=True,
        env=bare_environment(folder, **env),
        cwd=folder,
        timeout=60,
        check=False,
    )
    modules = frozenset(out.read_text().split())
    return Probed(done.returncode, done.stdout.decode(), done.stderr.decode(), modules)


def bare_environment(folder: Path, **env: str) -> dict[str, str]:
    """Only PATH, a secret, a cache in `folder` and `env`: as an MTA or a probe starts us."""
    return {
        "PATH": "/usr/bin:/bin",
        "MAILPROC_SECRET": "test",
        "XDG_CACHE_HOME": str(folder / "cache"),
        **env,
    }


def offenders(modules: Iterable[str], denied: Iterable[str]) -> list[str]:
    """The modules that are, or are inside, one of `denied`."""
    denied = tuple(denied)
    return sorted(m for m in modules for d in denied if m == d or m.startswith(f"{d}."))
