"""Run mailproc's command line in-process, as the CLI tests do."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
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
