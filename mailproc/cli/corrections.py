"""`incidents assign|move|priority|close|reopen|wait|comment|note|relate|merge|cc INC-n …`: an
administrator corrects an incident without sending mail (mailproc.desk.admin).

Each becomes a command of the subject language and goes through the same workflow as a mail:
refused with the reason (exit 5, nothing changed), else recorded and notified as a mail would
be. `--as PERSON` acts as that configured person (their permissions apply); without it, the
login that runs the command acts as an admin.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from mailproc.cli.app import EXIT_NOT_FOUND, EXIT_REFUSED, App, fail, incident_number, pass_app
from mailproc.cli.output import echo_json, json_option

if TYPE_CHECKING:
    from mailproc.desk.admin import Corrected


def _common(func: Callable[..., None]) -> Callable[..., None]:
    func = click.option(
        "--as", "as_person", metavar="PERSON", help="Act as this configured person."
    )(func)
    func = json_option(func)
    return click.argument("ref")(func)


def _text_option(func: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "--text", default="", help="A comment with it (to the reporter, as a reply would)."
    )(func)


def add_to(group: click.Group) -> None:
    """The corrections as subcommands of `incidents`."""
    for name, verb, argument, doc in _WITH_ARGUMENT:
        group.command(name, help=doc)(_with_argument(verb, argument))
    for name, verb, doc in _BARE:
        group.command(name, help=doc)(_bare(verb))
    group.command("comment", help=_SAID.format(what="a comment", who="the reporter"))(
        _said(note=False)
    )
    group.command("note", help=_SAID.format(what="an internal note", who="the desk's people"))(
        _said(note=True)
    )


_WITH_ARGUMENT = (
    ("assign", "ASSIGN", "PERSON", "Assign INC-n to PERSON (a solver of its service)."),
    ("move", "MOVE", "SERVICE", "Move INC-n to SERVICE."),
    ("priority", "PRIORITY", "PRIORITY", "Set the priority (P1-P4, critical, high, …)."),
    ("relate", "RELATE", "PROBLEM", "Relate INC-n to a known problem (PRB-n)."),
    ("merge", "MERGE", "INTO", "Merge INC-n, a duplicate, into INTO (INC-m)."),
    ("cc", "CC", "WATCHERS", "Add (+address) or drop (-address) watchers."),
)
_BARE = (
    ("close", "CLOSE", "Close INC-n as the workflow allows."),
    ("reopen", "REOPEN", "Reopen INC-n as the workflow allows."),
    ("resolve", "RESOLVE", "Mark INC-n resolved as the workflow allows."),
    ("wait", "WAIT", "Wait for the reporter's answer (the resolution clock stops)."),
)
_SAID = "Add {what} to INC-n (TEXT, or - to read it from standard input); {who} are told."


def _with_argument(verb: str, argument: str) -> Callable[..., None]:
    @_common
    @click.argument("value", metavar=argument, nargs=-1, required=True)
    @_text_option
    @pass_app
    def command(
        app: App,
        ref: str,
        value: tuple[str, ...],
        text: str,
        as_person: str | None,
        as_json: bool,
    ) -> None:
        _run(app, ref, f"[{verb} {' '.join(value)}]", text, False, as_person, as_json)

    return command


def _bare(verb: str) -> Callable[..., None]:
    @_common
    @_text_option
    @pass_app
    def command(app: App, ref: str, text: str, as_person: str | None, as_json: bool) -> None:
        _run(app, ref, f"[{verb}]", text, False, as_person, as_json)

    return command


def _said(note: bool) -> Callable[..., None]:
    @_common
    @click.argument("text")
    @pass_app
    def command(app: App, ref: str, text: str, as_person: str | None, as_json: bool) -> None:
        said = sys.stdin.read() if text == "-" else text
        if not said.strip():
            raise click.BadParameter("the text is empty", param_hint="TEXT")
        _run(app, ref, "", said, note, as_person, as_json)

    return command


def _run(
    app: App,
    ref: str,
    line: str,
    text: str,
    note: bool,
    as_person: str | None,
    as_json: bool,
) -> None:
    from mailproc.clock import utcnow
    from mailproc.desk.admin import UnknownPerson, actor_for, correct

    number = incident_number(ref)
    settings = app.settings
    try:
        actor = actor_for(settings, as_person, getpass.getuser())
    except UnknownPerson as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    done = correct(settings, app.ready_engine(), utcnow, number, line, actor, text, note)
    if as_json:
        echo_json(_as_json(done))
    else:
        click.echo(f"INC-{number}: {done.summary}")
        for kind, recipient in done.notices:
            click.echo(f"  notifies {recipient}: {kind}")
    if done.refused:
        sys.exit(EXIT_REFUSED)


def _as_json(done: Corrected) -> dict[str, Any]:
    return {
        "incident": done.incident,
        "summary": done.summary,
        "applied": list(done.applied),
        "refused": [{"command": r.command, "reason": r.reason} for r in done.refused],
        "notices": [{"kind": k, "recipient": r} for k, r in done.notices],
    }
