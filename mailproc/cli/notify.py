"""`send --once`, `templates check|preview` and `people show`: the outbox, the templates and
their readers from the shell."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy.orm import Session

from mailproc.calendars import zone_named
from mailproc.cli.app import EXIT_CONFIG, EXIT_FAILED, App, fail, incident_number, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.clock import utcnow
from mailproc.config.locale import language_tag
from mailproc.config.settings import Settings
from mailproc.notify.context import (
    IncidentFacts,
    build_context,
    reader_for,
    sample_context,
    sample_facts,
    sample_occasion,
    sample_recipient,
)
from mailproc.notify.facts import incident_facts
from mailproc.notify.formats import known_language
from mailproc.notify.letter import one_line, tagged_subject
from mailproc.notify.readers import reader_of
from mailproc.notify.recipients import DEFAULT_RECIPIENTS, Notice
from mailproc.notify.sender import deliver_pending
from mailproc.notify.templates import (
    TemplateProblem,
    Templates,
    check_templates,
    coverage,
    folder_of,
)
from mailproc.store import db
from mailproc.store.queries import UnknownIncident
from mailproc.vocabulary import DESK_NOTICES, NoticeKind, Party, Role


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


@click.command()
@click.option("--once", is_flag=True, help="Queue the digests due now, then exit.")
@click.option(
    "--at",
    "moment",
    type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
    help="As if it were this UTC time (to try a schedule).",
)
@json_option
@pass_app
def digest(app: App, once: bool, moment: datetime | None, as_json: bool) -> None:
    """Queue the queue digests due now (each solver's and each team's open incidents, at the
    times of [digest]); `send --once` or the daemon delivers them."""
    from mailproc.desk.digest import send_digests
    from mailproc.notify.outbox import Outbox

    if not once:
        raise click.UsageError("the daemon sends the digests on time; use --once for one run")
    clock = utcnow if moment is None else (lambda: moment.replace(tzinfo=UTC))
    sent = send_digests(app.settings, app.ready_engine(), clock, Outbox(app.settings))
    if as_json:
        echo_json({"queued": sent})
    else:
        click.echo(f"queued {sent} digest(s)")


@click.group()
def templates() -> None:
    """Check and preview the notification templates."""


@templates.command("check")
@json_option
@pass_app
def check(app: App, as_json: bool) -> None:
    """Render every template of every notice for every service with sample data."""
    folder = folder_of(app.settings)
    templates = Templates(folder)
    problems = check_templates(templates, app.settings)
    unknown = [lang for lang in templates.languages() if not known_language(lang)]
    if as_json:
        found = [{"where": p.where, "reason": p.reason} for p in problems]
        found += [{"where": str(folder / lang), "reason": "unknown language"} for lang in unknown]
        missing = coverage(templates, app.settings)
        ok = not problems and not unknown
        echo_json({"folder": folder, "ok": ok, "problems": found, "untranslated": missing})
    for problem in problems if not as_json else ():
        click.echo(str(problem), err=True)
    for language in unknown if not as_json else ():
        click.echo(f"{folder / language}: a language Babel does not know", err=True)
    if problems or unknown:
        fail(f"{len(problems) + len(unknown)} template problem(s) in {folder}", EXIT_CONFIG)
    if not as_json:
        _coverage(folder, templates, app.settings)


def _coverage(folder: Path, templates: Templates, settings: Settings) -> None:
    languages = ", ".join(["the default", *templates.languages()])
    click.echo(
        f"{folder}: {len(NoticeKind)} notices for {len(settings.services)} services render "
        f"in {languages}"
    )
    for language, missing in coverage(templates, settings).items():
        if missing:
            click.echo(
                f"{language}: {len(missing)} of {len(NoticeKind)} kinds missing, sent in the "
                f"default instead: {', '.join(missing)}"
            )
        else:
            click.echo(f"{language}: every kind translated")


@templates.command("preview")
@click.argument("event", type=click.Choice([k.value for k in NoticeKind]))
@click.option("--incident", "ref", help="Render with this incident (INC-n) instead of samples.")
@click.option("--service", help="Render this service's templates (default: the incident's).")
@click.option(
    "--role",
    type=click.Choice([p.value for p in Party]),
    help="The recipient's part (default: the notice's first default recipient).",
)
@click.option("--language", help="The reader's language (default: as resolved for them).")
@click.option("--zone", help="The reader's time zone (default: as resolved for them).")
@pass_app
def preview(
    app: App,
    event: str,
    ref: str | None,
    service: str | None,
    role: str | None,
    language: str | None,
    zone: str | None,
) -> None:
    """Print a notice as its recipient would read it."""
    settings, kind = app.settings, NoticeKind(event)
    if service is not None and service not in settings.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    facts = _facts(app, ref, service)
    cause, occasion = sample_occasion(kind, facts, comment=ref is None)
    recipient = sample_recipient(role or DEFAULT_RECIPIENTS[kind][0], facts, settings)
    notice = Notice(kind, recipient, cause)
    reader = reader_for(notice, facts, settings)
    if language is not None:
        reader = replace(reader, language=language_tag(language))
    if zone is not None:
        try:
            reader = replace(reader, zone=zone_named(zone).key)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--zone") from None
    if ref is None or kind in DESK_NOTICES:
        context = sample_context(notice, facts, occasion, settings, reader)
    else:
        context = build_context(notice, facts, occasion, settings, reader=reader)
    try:
        templates = Templates(folder_of(settings))
        rendered = templates.render(kind, service or facts.service, context, reader.language)
    except TemplateProblem as problem:
        fail(str(problem), EXIT_CONFIG)
    subject = (  # about no one incident: no [INC-n]
        one_line(rendered.subject)
        if kind in DESK_NOTICES
        else tagged_subject(rendered.subject, facts.number)
    )
    click.echo(f"Subject: {subject}")
    click.echo(f"To: {recipient.name} <{recipient.email}> ({recipient.role})")
    click.echo(f"Language: {reader.language}, time zone: {reader.zone}\n")
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


@click.group()
def people() -> None:
    """The people notices go to: their name, language and time zone."""


@people.command("show")
@click.argument("address")
@click.option("--service", help="For notices about this service (default: the default service).")
@pass_app
def show(app: App, address: str, service: str | None) -> None:
    """Print a person's name, language and time zone as notices use them, each with where it
    came from: their own settings, the directory, the service, its calendar or the desk."""
    settings = app.settings
    service = service or settings.default_service
    if service not in settings.services:
        raise click.BadParameter(f"unknown service {service!r}", param_hint="--service")
    reader = reader_of(address, settings, service)
    person = settings.people_by_email.get(reader.email)
    if person is None:
        role = "no role (reporter or other correspondent)"
    else:
        name, config = person
        serves = ", ".join(config.services) if config.role is Role.SOLVER else ""
        role = f"{config.role} (people.{name}{'; services ' + serves if serves else ''})"
    click.echo(reader.email)
    click.echo(f"  role      {role}")
    for field in ("name", "language", "zone"):
        value = getattr(reader, field) or "-"
        origin = reader.origins.get(field, "not given")
        click.echo(f"  {field:<9} {value:<20} from {origin}")
    click.echo(f"  (for notices about service {service})")
