"""`sla what-if|report|explain|recompute` and `escalate --once`: service levels from the shell.

`what-if` needs the configuration only: it runs the same pure computation the escalation pass
uses on a timeline of one fact, the creation. `report` reads the stored due times; `explain`
recomputes one incident from its history with every step; `escalate --once` is one escalation
pass, for cron (the daemon runs it every `sla.escalation_interval_seconds`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import click

from mailproc.cli.app import App, incident_number, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.clock import utcnow
from mailproc.config.settings import ServiceConfig, Settings
from mailproc.durations import format_duration
from mailproc.sla.clocks import (
    Created,
    Level,
    TargetStatus,
    compute,
    local_time,
    policy_from_settings,
)
from mailproc.sla.ladder import level_moments
from mailproc.times import WallTimeError, typed_instant, whole_second
from mailproc.vocabulary import PRIORITY_WORDS, EscalationRole, Priority


@click.group()
def sla() -> None:
    """Service levels: due times and escalations."""


def _priority(_ctx: click.Context, _param: click.Parameter, value: str) -> Priority:
    priority = PRIORITY_WORDS.get(value.upper())
    if priority is None:
        raise click.BadParameter(f"{value!r} is not P1–P4, critical, high, medium or low")
    return priority


@sla.command("what-if")
@click.option("--service", required=True, help="The service the incident would belong to.")
@click.option("--priority", required=True, callback=_priority, help="P1–P4 or a priority word.")
@click.option(
    "--at",
    "at_text",
    help="Creation time, ISO 8601 (2026-03-27T16:30); without an offset it is read in the "
    "service calendar's time zone. Default: now.",
)
@json_option
@pass_app
def what_if(app: App, service: str, priority: Priority, at_text: str | None, as_json: bool) -> None:
    """Print the due times and escalation moments of an incident created at --at."""
    settings = app.settings
    if service not in settings.services:
        names = ", ".join(sorted(settings.services))
        raise click.BadParameter(
            f"unknown service {service!r}; services: {names}", param_hint="--service"
        )
    policy = policy_from_settings(settings)
    calendar = policy.of(service).calendar
    created = _instant(at_text, calendar.zone)
    status = compute([Created(created, service, priority)], policy, created)
    if as_json:
        echo_json(_what_if_json(service, priority, created, status, policy.of(service).ladder))
        return
    click.echo(f"service {service}, priority {priority}, created {_both(created, calendar.zone)}")
    click.echo(f"calendar {calendar.description}")
    for target in status.targets:
        click.echo("")
        click.echo(_target_lines(target, settings, service, policy.of(service).ladder))


def _what_if_json(
    service: str,
    priority: Priority,
    created: datetime,
    status: Any,
    ladder: tuple[Level, ...],
) -> dict[str, Any]:
    targets = [
        {
            "target": target.target,
            "goal_seconds": target.goal.total_seconds(),
            "due": target.due,
            "levels": [
                {
                    "number": level.number,
                    "trigger": str(level.trigger),
                    "at": moment,
                    "to": list(level.recipients),
                }
                for level, moment in level_moments(target, ladder)
            ],
        }
        for target in status.targets
    ]
    calendar = status.targets[0].clock.calendar.description if status.targets else None
    return {
        "service": service,
        "priority": priority,
        "created": created,
        "calendar": calendar,
        "targets": targets,
    }


def _instant(text: str | None, zone: tzinfo) -> datetime:
    """A typed time, refused when the zone skips or repeats it (see mailproc.times)."""
    if text is None:
        return whole_second(utcnow())
    try:
        return typed_instant(datetime.fromisoformat(text), zone)
    except WallTimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="--at") from None


def _both(moment: datetime, zone: tzinfo) -> str:
    here, utc = local_time(moment, zone), local_time(moment, UTC)
    return here if here == utc else f"{here} ({utc})"


def _target_lines(
    target: TargetStatus, settings: Settings, service: str, ladder: tuple[Level, ...]
) -> str:
    zone = target.clock.calendar.zone
    assert target.due is not None
    lines = [f"{target.target}: target {_target(target)}, due {_both(target.due, zone)}"]
    config = settings.services[service]
    for level, moment in level_moments(target, ladder):
        when = _both(moment, zone) if moment else "never"
        to = ", ".join(_who(name, config) for name in level.recipients)
        lines.append(f"  level {level.number} at {level.trigger!s:<14} {when}  → {to}")
    if len(lines) == 1:
        lines.append("  no escalation levels")
    return "\n".join(lines)


def _target(target: TargetStatus) -> str:
    if isinstance(target.spec, timedelta):
        return f"{format_duration(target.goal)} of business time"
    return target.describe()


def _who(name: str, service: ServiceConfig) -> str:
    address = {EscalationRole.FIRST_LINE: service.first_line, EscalationRole.TEAM: service.team}
    if name in address:
        return f"{name} <{address[EscalationRole(name)] or 'not configured'}>"
    return name


_AS_OF = click.option(
    "--at",
    "at_text",
    help="As of this time, ISO 8601 (without an offset: UTC). Default: now.",
)


@sla.command("report")
@json_option
@_AS_OF
@pass_app
def report(app: App, as_json: bool, at_text: str | None) -> None:
    """List the open incidents with their due times: breached first, then at risk."""
    from mailproc.sla.views import report_table, sla_lines  # the store's: what-if needs none

    now = _instant(at_text, UTC)
    lines = sla_lines(app.ready_engine(), app.settings, now)
    if as_json:
        echo_json(lines)
    else:
        click.echo(report_table(lines, now))


@sla.command("explain")
@click.argument("ref")
@_AS_OF
@json_option
@pass_app
def explain(app: App, ref: str, at_text: str | None, as_json: bool) -> None:
    """Show how the due times of INC-n were computed: calendar, pauses, priority changes, moves,
    reopens, and the fate of each escalation level."""
    from mailproc.sla.state import SlaBook
    from mailproc.sla.views import explain as explain_incident
    from mailproc.sla.views import explanation_text, sla_lines

    engine, now = app.ready_engine(), _instant(at_text, UTC)
    number = incident_number(ref)
    explained = explain_incident(engine, SlaBook(app.settings), number, now)
    text = explanation_text(explained)
    if not as_json:
        click.echo(text)
        return
    line = next(
        (line for line in sla_lines(engine, app.settings, now) if line.number == number), None
    )
    echo_json(
        {
            "incident": explained.ref,
            "at": now,
            "sla": line,
            "targets": explained.targets,
            "explanation": text.splitlines(),
        }
    )


@sla.command("recompute")
@pass_app
def recompute(app: App) -> None:
    """Store the due times of every open incident afresh: run it after changing calendars,
    targets or escalation ladders, and after upgrading from a version without stored due times."""
    from mailproc.desk.escalations import recompute_due_times

    count = recompute_due_times(app.settings, app.ready_engine(), utcnow)
    click.echo(f"recomputed the due times of {count} incident(s)")


@click.command()
@click.option("--once", is_flag=True, help="Run one escalation pass, then exit.")
@json_option
@pass_app
def escalate(app: App, once: bool, as_json: bool) -> None:
    """Mail the SLA escalation levels whose time has come (queued in the outbox; `send --once`
    or the daemon delivers them)."""
    if not once:
        raise click.UsageError("the daemon escalates every few seconds; use --once for one pass")
    from mailproc.desk.escalations import run_escalations

    sent = run_escalations(app.settings, app.ready_engine(), utcnow)
    if as_json:
        echo_json({"escalated": sent})
    else:
        click.echo(f"escalated {sent} level(s)")
