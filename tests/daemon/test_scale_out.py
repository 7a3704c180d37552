"""Two daemons on one PostgreSQL and one mailbox, one of them killed half-way: every mail is
applied once, every notification sent once, with no coordinator but the database."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.store import db
from mailproc.store.queries import list_incidents
from tests.daemon.test_processes import backlog
from tests.support.daemon import (
    DaemonProcess,
    count,
    imap_source,
    messages,
    ready_engine,
    toml_config,
    wait_until,
)
from tests.support.mailfactory import message_id_of


def unsent(engine) -> int:
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(db.Outbox).where(db.Outbox.status != "sent")
            )
        )


def test_two_daemons_share_a_backlog_and_its_notifications_with_one_killed_half_way(
    pg_url, imap_mailbox, imap, smtp_server, tmp_path: Path
):
    total = 200
    engine = ready_engine(pg_url)
    mails = backlog(total)
    for raw in mails:
        imap.append("INBOX", raw)
    # a short lease, so mail the killed daemon had claimed is taken over soon after
    smtp = (
        f'[smtp]\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\nsecurity = "none"\n'
        "timeout = 2\nlease_seconds = 6\n"
        # tina's 20 commands get 20 transcripts: her storm breaker must not hold any here
        "[limits]\nreplies_per_correspondent_per_hour = 1000\n"
    )
    config = toml_config(
        pg_url, {"support": imap_source(imap_mailbox, batch_size=10)}, send_outbox_seconds=0.2
    )
    daemons = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.toml"
        path.write_text(config + smtp)
        daemons.append(DaemonProcess(path, tmp_path / f"{name}.log").start())
    first, second = daemons
    try:
        wait_until(lambda: count(engine, db.Message) >= total // 2, timeout=60, what="half")
        first.kill()
        wait_until(
            lambda: count(engine, db.Message) == total and messages(imap) == 0,
            timeout=90,
            what="the rest, by the second daemon",
        )
        wait_until(lambda: unsent(engine) == 0, timeout=60, what="the outbox sent")
        second.send(signal.SIGTERM)
        assert second.wait() == 0
    finally:
        for daemon in daemons:
            daemon.kill()

    with Session(engine) as session:
        keys = set(session.scalars(select(db.Message.key)))
        queued = list(session.scalars(select(db.Outbox.message_id)))
    replies = total // 10
    assert keys == {message_id_of(raw) for raw in mails}  # none missing
    assert len(list_incidents(engine)) == total - replies  # none doubled
    assert messages(imap, "Processed") == total
    assert "mailproc daemon running" in first.text() + second.text()
    sent = Counter(m.message["Message-ID"].strip("<>") for m in smtp_server.messages)
    assert set(sent) == set(queued)
    # The one documented window for a duplicate: the killed daemon's sender had a mail
    # accepted by the server and died before marking it sent.
    assert sum(n - 1 for n in sent.values()) <= 1, sent.most_common(3)
