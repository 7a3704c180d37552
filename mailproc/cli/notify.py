"""`send --once` and `templates check|preview`: the outbox and the templates from the shell."""

from __future__ import annotations

import asyncio

import click
from sqlalchemy.orm import Session

from mailproc.cli.app import EXIT_CONFIG, EXIT_FAILED, App, fail, pass_app
from mailproc.cli.incidents import incident_number
from mailproc.cli.output import echo_json, json_option
from mailproc.clock import utcnow
from mailproc.notify.context import (
    IncidentFacts,
    build_context,
    sample_attachments,
    sample_facts,
    sample_occasion,
    sample_recipient,
)
from mailproc.notify.facts import incident_facts
from mailproc.notify.letter import tagged_subject
from mailproc.notify.recipients import DEFAULT_RECIPIENTS, Notice
from mailproc.notify.sender import deliver_pending
from mailproc.notify.templates import TemplateProblem, Templates, check_templates, folder_of
from mailproc.store import db
from mailproc.store.queries import UnknownIncident
from mailproc.vocabulary import NoticeKind, Party


@click.command()
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@click.option(
    "--now", "ignore_backoff", is_flag=True, help="Also what waits for its retry (backoff)."
)
@json_option
@pass_app
def send(app: App, once: bool, ignore_backoff: bool, as_json: bool) -> None:
    """Send queued notifications through the configured SMTP server.

    Exits 1 when mail had to be deferred (server unreachable or a temporary refusal): it stays
    queued and is retried with backoff (or at the next `send --once --now`).
    """
    if not once:
        raise click.UsageError("the daemon sends continuously; use --once to flush the outbox now")
    report = asyncio.run(
        deliver_pending(app.settings, app.ready_engine(), utcnow, now=ignore_backoff)
    )
    if as_json:
        echo_json(report)
    else:
        click.echo(f"sent {report.sent}, failed {report.failed}, deferred {report.deferred}")
    if report.deferred:
        fail(f"{report.deferred} mail(s) deferred; they stay queued", EXIT_FAILED)


@click.group()
def templates() -> None:
    """Check and preview the notification templates."""


@templates.command("check")
@json_option
@pass_app
def check(app: App, as_json: bool) -> None:
    """Render every template of every notice for every service with sample data."""
    folder = folder_of(app.settings)
    problems = check_templates(Templates(folder), app.settings)
    if as_json:
        found = [{"where": p.where, "reason": p.reason} for p in problems]
        echo_json({"folder": folder, "ok": not problems, "problems": found})
    for problem in problems if not as_json else ():
        click.echo(str(problem), err=True)
    if problems:
        fail(f"{len(problems)} template problem(s) in {folder}", EXIT_CONFIG)
    if not as_json:
        services = len(app.settings.services)
        click.echo(f"{folder}: {len(NoticeKind)} notices for {services} services render")


@templates.command("preview")
@click.argument("event", type=click.Choice([k.value for k in NoticeKind]))
@click.option("--incident", "ref", help="Render with this incident (INC-n) instead of samples.")
@click.option("--service", help="Render this service's templates (default: the incident's).")
@click.option(
    "--role",
    type=click.Choice([p.value for p in Party]),
    help="The recipient's part (default: the notice's first default recipient).",
)
@pass_app
def preview(app: App, event: str, ref: str | None, service: str | None, role: str | None) -> None:
    """Print a notice as its recipient would read it."""
    settings, kind = app.settings, NoticeKind(event)
    if service is not None and service not in settings.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    facts = _facts(app, ref, service)
    cause, occasion = sample_occasion(kind, facts, comment=ref is None)
    recipient = sample_recipient(role or DEFAULT_RECIPIENTS[kind][0], facts, settings)
    notice = Notice(kind, recipient, cause)
    files = sample_attachments(notice, settings) if ref is None else ()
    context = build_context(notice, facts, occasion, settings, files)
    try:
        templates = Templates(folder_of(settings))
        rendered = templates.render(kind, service or facts.service, context)
    except TemplateProblem as problem:
        fail(str(problem), EXIT_CONFIG)
    click.echo(f"Subject: {tagged_subject(rendered.subject, facts.number)}")
    click.echo(f"To: {recipient.name} <{recipient.email}> ({recipient.role})\n")
    click.echo(rendered.text)
    if rendered.html is not None:
        click.echo("--- text/html ---")
        click.echo(rendered.html)


def _facts(app: App, ref: str | None, service: str | None) -> IncidentFacts:
    if ref is None:
        return sample_facts(app.settings, service or app.settings.default_service)
    number = incident_number(ref)
    with Session(app.ready_engine()) as session:
        row = session.get(db.Incident, number)
        if row is None:
            raise UnknownIncident(f"no incident INC-{number}")
        return incident_facts(session, row)
