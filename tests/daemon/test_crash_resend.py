"""kill -9 in the middle of a send: the next daemon resends at once, with the same Message-ID.

The real Dovecot brings a report in, the daemon (a process) sends its notices to an SMTP
server that takes the first mail's DATA and keeps its answer back, and the daemon is killed
there: the server has the mail, the outbox row still says pending under the dead process's
lease. The next daemon, on the same machine, finds the holder gone and sends the row again
at once (not after the 600 s lease), under the Message-ID of the first attempt, so a mail
client folds the two copies into one.
"""

from __future__ import annotations

import signal

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.store import db
from tests.support.daemon import count, imap_source, ready_engine, toml_config, wait_until
from tests.support.mailfactory import make_mail


def _outbox(engine) -> list[tuple[str, str, str | None]]:
    with Session(engine) as session:
        rows = session.execute(
            select(db.Outbox.message_id, db.Outbox.status, db.Outbox.claimed_by)
        ).all()
    return [tuple(row) for row in rows]


def test_a_notice_cut_off_by_kill_9_is_resent_at_once_with_its_first_message_id(
    database_url, imap_mailbox, imap, smtp_server, daemon_process
):
    engine = ready_engine(database_url)
    imap.append("INBOX", make_mail(subject="printer on fire", sender="Alice <alice@example.org>"))
    config = toml_config(
        database_url, {"support": imap_source(imap_mailbox)}, send_outbox_seconds=0.2
    )
    config += f'[smtp]\nhost = "{smtp_server.host}"\nport = {smtp_server.port}\nsecurity = "none"\n'
    smtp_server.hold()
    first = daemon_process(config).start()
    (held,) = smtp_server.wait_for(1, timeout=30)
    leased = [row for row in _outbox(engine) if row[2] is not None]
    assert leased and all(f" {first.proc.pid} " in row[2] for row in leased)
    first.send(signal.SIGKILL)
    first.wait()
    smtp_server.release()

    second = daemon_process(config).start()
    total = count(engine, db.Outbox)
    wait_until(  # far sooner than the lease's 600 s
        lambda: all(status == "sent" for _, status, _ in _outbox(engine)),
        timeout=30,
        what="every notice sent after the restart",
    )
    second.send(signal.SIGTERM)
    second.wait()
    ids = [m.message["Message-ID"] for m in smtp_server.messages]
    assert ids.count(held.message["Message-ID"]) == 2  # the cut-off send, and the resend
    assert len(ids) == total + 1
    assert "a sender that is gone" in second.text()
    engine.dispose()
