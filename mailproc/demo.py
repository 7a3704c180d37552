"""The demo: one incident's whole lifecycle on the embedded defaults, through the real code path.

Sample mails are built as bytes and handed to the same Desk that IMAP mail reaches, on a fresh
SQLite database, so what the demo shows is what a desk would get.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from mailproc import report
from mailproc.config import load_settings
from mailproc.db import make_engine
from mailproc.problems import add_problem
from mailproc.queries import get_incident, list_incidents
from mailproc.schema import upgrade
from mailproc.service import Desk, Origin

START = datetime(2026, 11, 23, 8, 55, tzinfo=UTC)
ALICE = "Alice Novák <alice@example.org>"
TINA = "Tina Solver <tina@example.com>"
SUPPORT = "mail-support@example.com"


def _mail(n: int, sender: str, subject: str, body: str, reply_to: int | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = SUPPORT
    msg["Subject"] = subject
    msg["Date"] = format_datetime(START + timedelta(minutes=10 * n))
    msg["Message-ID"] = f"<demo-{n}@example.org>"
    if reply_to is not None:
        msg["In-Reply-To"] = f"<demo-{reply_to}@example.org>"
        msg["References"] = " ".join(f"<demo-{i}@example.org>" for i in range(1, reply_to + 1))
    msg.set_content(body)
    return msg.as_bytes()


def sample_mails() -> Iterator[tuple[str, bytes]]:
    quote = "\n\nOn Mon, 23 Nov 2026 at 09:05, Tina Solver wrote:\n> Looking into it.\n"
    yield (
        "the reporter writes in",
        _mail(
            1,
            ALICE,
            "Exchange server is down – cannot send mail",
            "Since 9:00 nobody in accounting can send or receive mail. "
            "Outlook says 'Disconnected'.",
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
        "the reporter adds a comment (quoted history is not copied)",
        _mail(
            3,
            ALICE,
            "Re: [INC-1] Exchange server is down",
            "It also affects the phones of the sales team." + quote,
            2,
        ),
    )
    yield (
        "a mistyped command is refused, nothing changes",
        _mail(
            4,
            TINA,
            "Re: [INC-1] [ASIGN sam]",
            "Sam knows the mail gateway better.",
            3,
        ),
    )
    yield (
        "the solver binds it to a known problem",
        _mail(
            5,
            TINA,
            "Re: [INC-1] [RELATE PRB-1]",
            "Same certificate expiry as last month; workaround applied, mail flows again.",
            4,
        ),
    )
    yield "the solver closes it", _mail(6, TINA, "Re: [INC-1] [CLOSE]", "Service restored.", 5)


def run_demo(folder: Path, echo: Callable[[str], None]) -> None:
    settings = load_settings(environ={}).model_copy(
        update={"database_url": f"sqlite:///{folder / 'demo.db'}"}
    )
    engine = make_engine(settings.database_url)
    upgrade(engine)
    echo(f"demo database: {folder / 'demo.db'} (embedded default configuration)\n")
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
    for step, raw in sample_mails():
        outcome = desk.handle(raw, Origin("demo"))
        echo(f"- {step}:\n    {outcome.summary}")
    echo("\nincidents:\n" + report.incident_table(list_incidents(engine)) + "\n")
    for summary in list_incidents(engine):
        echo(report.incident_detail(get_incident(engine, summary.number)) + "\n")
    engine.dispose()
