"""Run mailproc's command line in-process, as the CLI tests do."""

from __future__ import annotations

from collections.abc import Callable

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
