"""`sla what-if`: the due times and escalation moments a new incident would get.

Configuration only, no database: it runs the same pure computation the escalation pass uses
on a timeline of one fact, the creation.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo

import click

from mailproc.cli import App, pass_app
from mailproc.config import ServiceConfig, Settings
from mailproc.durations import format_duration
from mailproc.escalation import level_moments
from mailproc.sla import Created, Level, TargetStatus, compute, local_time, policy_from_settings
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
@pass_app
def what_if(app: App, service: str, priority: Priority, at_text: str | None) -> None:
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
    click.echo(f"service {service}, priority {priority}, created {_both(created, calendar.zone)}")
    click.echo(f"calendar {calendar.description}")
    for target in status.targets:
        click.echo("")
        click.echo(_target_lines(target, settings, service, policy.of(service).ladder))


def _instant(text: str | None, zone: tzinfo) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an ISO 8601 time", param_hint="--at") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def _both(moment: datetime, zone: tzinfo) -> str:
    here, utc = local_time(moment, zone), local_time(moment, UTC)
    return here if here == utc else f"{here} ({utc})"


def _target_lines(
    target: TargetStatus, settings: Settings, service: str, ladder: tuple[Level, ...]
) -> str:
    zone = target.clock.calendar.zone
    assert target.due is not None
    lines = [
        f"{target.target}: target {format_duration(target.goal)} of business time, "
        f"due {_both(target.due, zone)}"
    ]
    config = settings.services[service]
    for level, moment in level_moments(target, ladder):
        when = _both(moment, zone) if moment else "never"
        to = ", ".join(_who(name, config) for name in level.recipients)
        lines.append(f"  level {level.number} at {level.trigger!s:<14} {when}  → {to}")
    if len(lines) == 1:
        lines.append("  no escalation levels")
    return "\n".join(lines)


def _who(name: str, service: ServiceConfig) -> str:
    address = {EscalationRole.FIRST_LINE: service.first_line, EscalationRole.TEAM: service.team}
    if name in address:
        return f"{name} <{address[EscalationRole(name)] or 'not configured'}>"
    return name


COMMANDS = [sla]
