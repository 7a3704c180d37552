"""`demo`: the main job on embedded defaults, no mail server needed.

The demo: one incident's whole lifecycle on the embedded defaults, through the real code path.

Sample mails are built as bytes and handed to the same Desk that IMAP mail reaches, on a fresh
SQLite database, so what the demo shows is what a desk would get.
"""

from __future__ import annotations

import secrets
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from functools import partial
from pathlib import Path

import click
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailproc.cli import report
from mailproc.config.locale import language_tag
from mailproc.config.settings import demo_settings
from mailproc.desk.digest import send_digests
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Origin
from mailproc.desk.problems import add_problem
from mailproc.inbound.parse import InboundMail, parse_mail
from mailproc.notify.letter import compose, letter_from_json
from mailproc.notify.sender import enclosed
from mailproc.store import db
from mailproc.store.db import make_engine
from mailproc.store.queries import get_incident, list_incidents, notifications
from mailproc.store.schema import upgrade

START = datetime(2026, 11, 23, 8, 55, tzinfo=UTC)
ALICE = "Alice Novák <alice@example.org>"
TINA = "Tina Solver <tina@example.com>"
SUPPORT = "mail-support@example.com"


# A 1×1 PNG, as a screenshot would come.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f01f0005010201a9e6a0a70000000049454e44ae426082"
)


def _mail(
    n: int,
    sender: str,
    subject: str,
    body: str,
    reply_to: int | None = None,
    attachment: tuple[str, str, bytes] | None = None,
    to: str = SUPPORT,
    answers: str | None = None,
) -> bytes:
    """`answers`: the Message-ID of our notice this mail replies to, as a mail client writes
    it; its signature proves the reporter (mailproc.workflow.proof) as her token would."""
    msg = EmailMessage()
    if sender.endswith("@example.com>"):  # internal mail, signed and checked by our server
        msg["Authentication-Results"] = "mx.example.com; dkim=pass header.d=example.com"
        msg["Received"] = "from mail.example.com (mail.example.com [192.0.2.25]) by mx.example.com"
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(START + timedelta(minutes=10 * n))
    msg["Message-ID"] = f"<demo-{n}@example.org>"
    if answers is not None:
        msg["In-Reply-To"] = f"<{answers}>"
        msg["References"] = f"<demo-1@example.org> <{answers}>"
    elif reply_to is not None:
        msg["In-Reply-To"] = f"<demo-{reply_to}@example.org>"
        msg["References"] = " ".join(f"<demo-{i}@example.org>" for i in range(1, reply_to + 1))
    msg.set_content(body)
    if attachment is not None:
        name, kind, content = attachment
        maintype, subtype = kind.split("/")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def sample_mails(last_notice: Callable[[str], str | None]) -> Iterator[tuple[str, bytes]]:
    """The story's mails, each made when its turn comes: `last_notice(address)` is the
    Message-ID of the latest notice to that address, which a reply names."""
    quote = "\n\nOn Mon, 23 Nov 2026 at 09:05, Tina Solver wrote:\n> Looking into it.\n"
    yield (
        "the reporter writes in",
        _mail(
            1,
            ALICE,
            "Exchange server is down – cannot send mail",
            "Since 9:00 nobody in accounting can send or receive mail. "
            "Outlook says 'Disconnected'; a screenshot is attached.",
            attachment=("outlook-disconnected.png", "image/png", PNG),
        ),
    )
    yield (
        "a solver takes it and raises the priority",
        _mail(
            2,
            TINA,
            "Re: [INC-1] Exchange server is down [ASSIGN tina] [PRIORITY P1]",
            "Looking into it.",
            1,
        ),
    )
    yield (
        "the reporter answers the notice she got (quoted history is not copied)",
        _mail(
            3,
            ALICE,
            "Re: [INC-1] Exchange server is down",
            "It also affects the phones of the sales team." + quote,
            answers=last_notice("alice@example.org"),
        ),
    )
    yield (
        "the solver writes an internal note: the team reads it, the reporter never does",
        _mail(
            4,
            TINA,
            "Re: [INC-1] Exchange server is down [NOTE]",
            "The front end's certificate expired last night; renewing it now.",
            3,
        ),
    )
    yield (
        "a mistyped command is refused, nothing changes",
        _mail(
            5,
            TINA,
            "Re: [INC-1] [ASIGN sam]",
            "We are asking our mail gateway specialist to look at it too.",
            4,
        ),
    )
    yield (
        "the solver binds it to a known problem",
        _mail(
            6,
            TINA,
            "Re: [INC-1] [RELATE PRB-1]",
            "Same certificate expiry as last month; workaround applied, mail flows again.",
            5,
        ),
    )
    yield "the solver closes it", _mail(7, TINA, "Re: [INC-1] [CLOSE]", "Service restored.", 6)
    yield (
        "another report comes in and nobody takes it today",
        _mail(
            8,
            "Bob <bob@example.org>",
            "Printer on floor 4 prints blank pages",
            "Since the toner change every page comes out blank.",
            to="support@example.com",
        ),
    )


def run_demo(folder: Path, echo: Callable[[str], None], language: str | None = None) -> None:
    """`language`: the desk's language, so every notice is written in it (`de`: German)."""
    # A throw-away signing secret: the demo's Message-IDs live as long as its database.
    environ = {"MAILPROC_SECRET": secrets.token_hex(16)}
    settings = demo_settings(environ=environ)
    update: dict[str, object] = {"database_url": f"sqlite:///{folder / 'demo.db'}"}
    if language is not None:
        update["locale"] = settings.locale.model_copy(update={"language": language})
    settings = settings.model_copy(update=update)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    speaks = f", notices in {language}" if language else ""
    echo(f"demo database: {folder / 'demo.db'} (embedded default configuration{speaks})\n")
    add_problem(
        engine,
        START,
        "Exchange certificate expired",
        symptoms="Outlook shows Disconnected; mail cannot be sent",
        workaround="Renew the certificate on the Exchange front end and restart IIS.",
    )
    echo("known problem PRB-1 recorded: Exchange certificate expired\n")
    clock = iter(START + timedelta(minutes=10 * n + 1) for n in range(1, 100))
    desk = Desk(settings, engine, clock=lambda: next(clock))
    seen = 0
    for step, raw in sample_mails(partial(_last_notice, engine)):
        outcome = desk.handle(raw, Origin("demo"))
        echo(f"- {step}:\n    {outcome.summary}")
        for notice in notifications(engine, after=seen):
            echo(f"    notifies {notice.recipient}: {notice.subject}")
            seen = notice.id
    morning = START.replace(hour=7, minute=0) + timedelta(days=1)  # 08:00 in Prague
    digests = send_digests(settings, engine, lambda: morning, desk.outbox)
    echo(f"- the next morning at 08:00 (Europe/Prague) the queue digests go out: {digests}")
    for notice in notifications(engine, after=seen):
        echo(f"    notifies {notice.recipient}: {notice.subject}")
        seen = notice.id
    echo("\nincidents:\n" + report.incident_table(list_incidents(engine)) + "\n")
    for summary in list_incidents(engine):
        echo(report.incident_detail(get_incident(engine, summary.number)) + "\n")
    _show_notifications(engine, echo)
    engine.dispose()


def _show_notifications(engine: Engine, echo: Callable[[str], None]) -> None:
    """Two queued mails in full, as their recipients would read them (`mailproc send --once`
    with an [smtp] section would deliver them all): the reporter's acknowledgment, and the
    team's notice of the new incident, which carries the reporter's screenshot."""
    shown = (("acknowledgment", "the first notification"), ("new_incident", ""), ("digest", ""))
    for kind, title in shown:
        mail = _notice(engine, kind)
        if mail is None:
            continue
        to = ", ".join(a.email for a in mail.to)
        echo(f"{title or f'the {kind} notice'}, as {to} would read it:\n")
        echo(f"  Subject: {mail.subject}")
        for part in mail.attachments:
            echo(f"  Attached: {part.filename} ({part.content_type}, {part.size} bytes)")
        echo("")
        echo(textwrap.indent(mail.text.rstrip(), "  ") + "\n")


def _last_notice(engine: Engine, address: str) -> str | None:
    with Session(engine) as session:
        return session.scalar(
            select(db.Outbox.message_id)
            .where(db.Outbox.recipient == address)
            .order_by(db.Outbox.id.desc())
            .limit(1)
        )


def _notice(engine: Engine, kind: str) -> InboundMail | None:
    with Session(engine) as session:
        data = session.scalar(
            select(db.Outbox.letter).where(db.Outbox.kind == kind).order_by(db.Outbox.id).limit(1)
        )
    if data is None:
        return None
    letter = letter_from_json(data)
    return parse_mail(compose(letter, enclosed(engine, letter)))


def _language(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    try:
        return None if value is None else language_tag(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option(
    "--keep",
    type=click.Path(path_type=Path, file_okay=False),
    help="Keep the demo database in this folder instead of a temporary one.",
)
@click.option(
    "--language",
    callback=_language,
    help="Write the notices in this language (e.g. de: the German templates shipped).",
)
def demo(keep: Path | None, language: str | None) -> None:
    """Run sample mails through mailproc and print the incidents and their histories."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        run_demo(keep.resolve(), click.echo, language)
        return
    with tempfile.TemporaryDirectory(prefix="mailproc-demo-") as folder:
        run_demo(Path(folder), click.echo, language)
