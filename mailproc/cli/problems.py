"""`problems add|list|show|resolve`: the Known Error Database from the command line."""

from __future__ import annotations

import re

import click

from mailproc.cli import report
from mailproc.cli.app import App, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.clock import utcnow
from mailproc.desk.problems import add_problem, get_problem, list_problems, update_problem
from mailproc.notify.outbox import Outbox
from mailproc.vocabulary import ProblemStatus

_REF = re.compile(r"^(?:PRB-?)?(\d+)$", re.IGNORECASE)
_STATUS = click.Choice([s.value for s in ProblemStatus])


def problem_number(value: str) -> int:
    match = _REF.match(value.strip())
    if match is None:
        raise click.BadParameter(f"{value!r} is not a problem reference like PRB-7")
    return int(match.group(1))


@click.group()
def problems() -> None:
    """Manage known problems (PRB-n) that incidents can be related to."""


@problems.command("add")
@click.option("--title", required=True)
@click.option("--symptoms", default="", help="What users see; matched against new incidents.")
@click.option("--workaround", default="", help="How users get going again meanwhile.")
@click.option("--status", type=_STATUS, default=ProblemStatus.OPEN.value, show_default=True)
@json_option
@pass_app
def add(app: App, title: str, symptoms: str, workaround: str, status: str, as_json: bool) -> None:
    """Record a new problem."""
    number = add_problem(
        app.ready_engine(), utcnow(), title, symptoms, workaround, ProblemStatus(status)
    )
    if as_json:
        echo_json({"number": number, "ref": f"PRB-{number}"})
    else:
        click.echo(f"PRB-{number}")


@problems.command("list")
@click.option("--status", type=_STATUS)
@json_option
@pass_app
def list_(app: App, status: str | None, as_json: bool) -> None:
    """List problems."""
    rows = list_problems(app.ready_engine(), ProblemStatus(status) if status else None)
    if as_json:
        echo_json(rows)
    else:
        click.echo(report.problem_table(rows))


@problems.command("show")
@click.argument("ref")
@json_option
@pass_app
def show(app: App, ref: str, as_json: bool) -> None:
    """Show a problem with its related incidents."""
    problem = get_problem(app.ready_engine(), problem_number(ref))
    if as_json:
        echo_json(problem)
    else:
        click.echo(report.problem_detail(problem))


@problems.command("update")
@click.argument("ref")
@click.option("--status", type=_STATUS)
@click.option("--workaround")
@pass_app
def update(app: App, ref: str, status: str | None, workaround: str | None) -> None:
    """Change a problem's status or workaround (e.g. when it becomes a known error)."""
    problem = update_problem(
        app.ready_engine(),
        problem_number(ref),
        utcnow(),
        status=ProblemStatus(status) if status else None,
        workaround=workaround,
        outbox=Outbox(app.settings),
    )
    click.echo(f"{problem.ref}: {problem.status.value}")


@problems.command("resolve")
@click.argument("ref")
@pass_app
def resolve(app: App, ref: str) -> None:
    """Mark a problem resolved."""
    problem = update_problem(
        app.ready_engine(),
        problem_number(ref),
        utcnow(),
        status=ProblemStatus.RESOLVED,
        outbox=Outbox(app.settings),
    )
    click.echo(f"{problem.ref}: resolved ({len(problem.incidents)} related incidents)")
