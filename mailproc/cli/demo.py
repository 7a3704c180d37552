"""`demo`: the main job on embedded defaults, no mail server needed."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from mailproc.demo import run_demo


@click.command()
@click.option(
    "--keep",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the demo database in this folder instead of a temporary one.",
)
def demo(keep: Path | None) -> None:
    """Run sample mails through mailproc and print the incidents and their histories."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        run_demo(keep.resolve(), click.echo)
        return
    with tempfile.TemporaryDirectory(prefix="mailproc-demo-") as folder:
        run_demo(Path(folder), click.echo)


COMMANDS = [demo]
