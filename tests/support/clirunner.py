"""Run mailproc's command line in-process, as the CLI tests do."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailproc.cli import command

Invoke = Callable[..., Result]


def invoker(*prefix: str) -> Invoke:
    """`invoke(*args, input=None, code=0)`: mailproc with `prefix` (e.g. --config PATH) and the
    args; an exit code other than `code` (None: any) fails the test and shows the output."""
    runner = CliRunner()

    def invoke(*args: str, input: bytes | None = None, code: int | None = 0) -> Result:
        result = runner.invoke(command(), [*prefix, *args], input=input, prog_name="mailproc")
        assert code is None or result.exit_code == code, result.output + result.stderr
        return result

    return invoke


def use_demo_config(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    """The embedded demo configuration as a file in `folder`, named by MAILPROC_CONFIG, with a
    signing secret: commands other than `demo` need a configuration file of their own."""
    path = write_demo_config(folder)
    monkeypatch.setenv("MAILPROC_CONFIG", str(path))
    monkeypatch.setenv("MAILPROC_SECRET", "cli tests")
    return path


def write_demo_config(folder: Path) -> Path:
    """The embedded demo configuration as `folder`/demo.toml."""
    path = folder / "demo.toml"
    text = resources.files("mailproc.config").joinpath("default_config.toml").read_text("utf-8")
    path.write_text(text, encoding="utf-8")
    return path


# Imports first, then says it is ready and waits for the word on stdin: the processes begin
# together, after the slow part of starting Python.
_GATED = """
import sys
from mailproc.cli import main
print("ready", flush=True)
sys.stdin.readline()
main(sys.argv[1:])
"""


def run_together(
    args: list[str], env: Mapping[str, str], count: int = 2, cwd: Path | None = None
) -> list[tuple[int, str, str]]:
    """`count` mailproc processes with the same arguments, started at the same moment:
    (exit code, stdout, stderr) of each."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _GATED, *args],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    results = [process.communicate(timeout=120) for process in processes]
    return [(p.returncode, out, err) for p, (out, err) in zip(processes, results, strict=True)]


def demo_cli(monkeypatch: pytest.MonkeyPatch, folder: Path, database_url: str) -> Invoke:
    """`invoke` in `folder` on the demo configuration and `database_url`, initialised."""
    monkeypatch.chdir(folder)
    use_demo_config(monkeypatch, folder)
    monkeypatch.setenv("MAILPROC_DATABASE_URL", database_url)
    invoke = invoker()
    invoke("init")
    return invoke


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Invoke:
    """mailproc in an empty folder on the demo configuration and a fresh, initialised database
    (SQLite and PostgreSQL)."""
    return demo_cli(monkeypatch, tmp_path, database_url)
