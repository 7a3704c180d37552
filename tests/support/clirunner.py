"""Run mailproc's command line in-process, as the CLI tests do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailproc.cli import command

Invoke = Callable[..., Result]


def invoker(*prefix: str) -> Invoke:
    """`invoke(*args, input=None, code=0)`: mailproc with `prefix` (e.g. --config PATH) and the
    args; an exit code other than `code` fails the test and shows the command's output."""
    runner = CliRunner()

    def invoke(*args: str, input: bytes | None = None, code: int = 0) -> Result:
        result = runner.invoke(command(), [*prefix, *args], input=input)
        assert result.exit_code == code, result.output + result.stderr
        return result

    return invoke


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> Invoke:
    """mailproc in an empty folder on a fresh, initialised database (SQLite and PostgreSQL)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILPROC_DATABASE_URL", database_url)
    monkeypatch.delenv("MAILPROC_CONFIG", raising=False)
    invoke = invoker()
    invoke("init")
    return invoke
