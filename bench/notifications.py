"""Notification figures: mails per second through one SMTP connection, and the cost of one mail.

    .venv/bin/python bench/notifications.py                 # 2,000 mails, SQLite
    .venv/bin/python bench/notifications.py --mails 5000 --postgres

In one run, on a fresh database (a SQLite file, or a durable PostgreSQL the script starts):

1. N/2 new incidents go through `Desk.handle`, each queueing two notices (the acknowledgment and
   the first-line alert) in its transaction; the same number again with notifications switched
   off gives the cost of the outbox as a ratio.
2. `deliver_pending` sends the N queued mails over one connection to aiosmtpd running in its
   own process (a sink that accepts everything), marking each row sent in its own transaction
   as the server accepts it (the duplicate window).
3. Rendering alone: `Templates.render` and `compose` of an acknowledgment (text and HTML) and of
   a comment notice, median of many repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from mailproc.config.settings import Settings, SmtpConfig, demo_settings  # noqa: E402
from mailproc.desk.mail import Desk  # noqa: E402
from mailproc.notify.context import (  # noqa: E402
    Occasion,
    build_context,
    sample_facts,
    sample_occasion,
    sample_recipient,
)
from mailproc.notify.letter import AUTO_REPLIED, Letter, compose  # noqa: E402
from mailproc.notify.recipients import Notice  # noqa: E402
from mailproc.notify.sender import deliver_pending  # noqa: E402
from mailproc.notify.templates import Rendered, Templates, folder_of  # noqa: E402
from mailproc.store import db  # noqa: E402
from mailproc.store.db import make_engine  # noqa: E402
from mailproc.store.schema import upgrade  # noqa: E402
from mailproc.vocabulary import NoticeKind  # noqa: E402
from tests.support.mailfactory import make_mail  # noqa: E402
from tests.support.servers import PostgresServer, free_port  # noqa: E402

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def ingest(settings: Settings, count: int, label: str) -> float:
    """Seconds per mail for `count` new incidents through the Desk."""
    engine = make_engine(settings.database_url)
    upgrade(engine)
    moments = iter(START + timedelta(seconds=n) for n in range(10**7))
    desk = Desk(settings, engine, clock=lambda: next(moments))
    mails = [
        make_mail(subject=f"{label} {n}: Outlook cannot send mail", sender=f"u{n}@example.org")
        for n in range(count)
    ]
    began = time.perf_counter()
    for raw in mails:
        desk.handle(raw)
    elapsed = time.perf_counter() - began
    engine.dispose()
    return elapsed / count


@contextlib.contextmanager
def smtp_sink() -> Iterator[int]:
    """aiosmtpd in its own process, accepting everything: a local relay that costs us nothing
    but the protocol. Yields its port."""
    port = free_port()
    argv = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    server = subprocess.Popen([*argv, "-l", f"127.0.0.1:{port}"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("aiosmtpd did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def send(settings: Settings, expected: int) -> float:
    """Seconds to send the whole outbox over one connection; checks every row was sent."""
    engine = make_engine(settings.database_url)
    with smtp_sink() as port:
        smtp = SmtpConfig(host="127.0.0.1", port=port, security="none", batch_size=200)
        config = settings.model_copy(update={"smtp": smtp})
        began = time.perf_counter()
        report = asyncio.run(deliver_pending(config, engine, lambda: START + timedelta(days=1)))
        elapsed = time.perf_counter() - began
    with Session(engine) as session:
        sent = session.scalar(select(func.count()).where(db.Outbox.status == "sent"))
    engine.dispose()
    if report.sent != expected or sent != expected:
        raise SystemExit(f"sent {report.sent}, rows marked sent {sent}, expected {expected}")
    return elapsed


def median_ms(action: Callable[[], object], repeat: int) -> float:
    action()  # compile and cache first, as in a running daemon
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def rendering(settings: Settings, repeat: int) -> list[tuple[str, float, float]]:
    templates = Templates(folder_of(settings))
    facts = sample_facts(settings, "email")
    rows = []
    german = settings.model_copy(
        update={"locale": settings.locale.model_copy(update={"language": "de"})}
    )
    for kind, speaks in (
        (NoticeKind.ACKNOWLEDGMENT, settings),
        (NoticeKind.COMMENT, settings),
        (NoticeKind.ACKNOWLEDGMENT, german),
    ):
        cause, occasion = sample_occasion(kind, facts)
        notice = Notice(kind, sample_recipient("reporter", facts, speaks), cause)
        language = speaks.locale.language

        def render(
            notice: Notice = notice, occasion: Occasion = occasion, speaks: Settings = speaks
        ) -> Rendered:
            context = build_context(notice, facts, occasion, speaks)
            return templates.render(notice.kind, "email", context, speaks.locale.language)

        rendered = render()

        def build(rendered: Rendered = rendered) -> bytes:
            return compose(
                Letter(
                    subject=rendered.subject,
                    text=rendered.text,
                    html=rendered.html,
                    from_name="Service desk",
                    from_address="mail-support@example.com",
                    to_name="Alice Novák",
                    to_address="alice@example.org",
                    reply_to="mail-support@example.com",
                    message_id="mp1.42.aaaaaaaa.bbbbbbbb.cccccccccccccccc@example.com",
                    in_reply_to="orig@example.org",
                    references=("orig@example.org",),
                    auto_submitted=AUTO_REPLIED,
                    date=START,
                )
            )

        label = f"{kind.value} ({'text + HTML' if rendered.html else 'text'}, {language})"
        rows.append((label, median_ms(render, repeat), median_ms(build, repeat)))
    return rows


def run(database_url: str, mails: int, repeat: int) -> None:
    base = demo_settings(environ={"MAILPROC_SECRET": "benchmark"})
    on = base.model_copy(update={"database_url": database_url})
    off_url = database_url + "_off" if "postgresql" in database_url else database_url + ".off"
    off = base.model_copy(
        update={
            "database_url": off_url,
            "notifications": base.notifications.model_copy(update={"enabled": False}),
        }
    )
    with_notices = ingest(on, mails // 2, "on")
    without = ingest(off, mails // 2, "off")
    sent = 2 * (mails // 2)
    elapsed = send(on, sent)
    print(f"database: {database_url.split('://')[0]}, {sent} notifications\n")
    print("| measure | value |")
    print("| --- | ---: |")
    print(f"| sent through one SMTP connection | {sent / elapsed:,.0f} mails/s |")
    print(f"| Desk.handle per new incident, 2 notices queued | {with_notices * 1000:.1f} ms |")
    print(f"| Desk.handle per new incident, notifications off | {without * 1000:.1f} ms |")
    print(f"| ratio on / off | {with_notices / without:.2f} |")
    print("\n| notice | render ms | compose ms |")
    print("| --- | ---: | ---: |")
    for label, render_ms, compose_ms in rendering(on, repeat):
        print(f"| {label} | {render_ms:.2f} | {compose_ms:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000, help="notifications to send")
    parser.add_argument("--repeat", type=int, default=300, help="renderings to time")
    parser.add_argument("--postgres", action="store_true", help="a durable PostgreSQL")
    args = parser.parse_args()
    if args.postgres:
        with PostgresServer(durable=True) as server:
            server.create_database("bench_off")
            run(server.create_database("bench"), args.mails, args.repeat)
        return
    with tempfile.TemporaryDirectory(prefix="mailproc-bench-") as folder:
        run(f"sqlite:///{folder}/bench.db", args.mails, args.repeat)


if __name__ == "__main__":
    main()
