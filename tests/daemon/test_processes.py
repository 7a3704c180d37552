"""`mailproc run` as a process: SIGKILL at random points, SIGTERM drain, SIGHUP reload."""

from __future__ import annotations

import random
import signal
import sqlite3
import time

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.store import db
from mailproc.store.queries import list_incidents
from tests.support.daemon import (
    count,
    imap_source,
    messages,
    polled_once,
    ready_engine,
    toml_config,
    wait_until,
)
from tests.support.mailfactory import make_mail, message_id_of

TINA = "Tina <tina@example.com>"


def backlog(total: int) -> list[bytes]:
    """New incidents, and every tenth mail a solver's reply with a command on an earlier one."""
    mails: list[bytes] = []
    for n in range(total):
        if n % 10 == 9:
            mails.append(
                make_mail(
                    sender=TINA,
                    subject="Re: [PRIORITY P1]",
                    body=f"Raising {n - 5}.",
                    in_reply_to=message_id_of(mails[n - 5]),
                )
            )
        else:
            mails.append(make_mail(subject=f"backlog {n}", sender=f"user{n}@example.org"))
    return mails


def test_sigkill_at_random_points_applies_every_mail_exactly_once(
    pg_url, imap_mailbox, imap, daemon_process
):
    total, rng = 250, random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    engine = ready_engine(pg_url)
    mails = backlog(total)
    for raw in mails:
        imap.append("INBOX", raw)
    source = imap_source(imap_mailbox, batch_size=rng.choice([3, 7, 20]))
    # Random kills are not a poison mail: a mail in hand at two of them would be quarantined
    # as one (tests/daemon/test_poison.py), so this test allows more deaths per mail.
    config = (
        toml_config(pg_url, {"support": source}) + "[limits]\ncrashes_before_quarantine = 100\n"
    )
    daemon = daemon_process(config)
    kills = 0
    while count(engine, db.Message) < total * 0.9 and kills < 10:
        stored = count(engine, db.Message)
        daemon.start()
        if kills < 2:  # kill during start-up: connecting, creating folders, first SELECT
            time.sleep(rng.uniform(0, 0.8))
        else:  # kill mid-backlog: inside a transaction, between commit and MOVE, anywhere
            target = min(total, stored + rng.randint(10, 60))
            # a loaded machine may take long to start a daemon: a generous wait, not a measure
            wait_until(
                lambda t=target: count(engine, db.Message) >= t, timeout=60, what=f"{target} stored"
            )
            time.sleep(rng.uniform(0, 0.02))
        daemon.kill()
        kills += 1
    started = daemon.text().count("mailproc daemon running")
    daemon.start()
    wait_until(lambda: count(engine, db.Message) == total and messages(imap) == 0, timeout=60)
    wait_until(lambda: daemon.text().count("mailproc daemon running") > started, timeout=60)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0

    context = f"seed {seed}, {kills} kills, batches of {source['batch_size']}"
    # Whether a kill fell between a commit and its MOVE is chance (group commit makes that
    # window short); test_imap's crash-before-settle test exercises it deterministically.
    with Session(engine) as session:
        keys = set(session.scalars(select(db.Message.key)))
        kinds = dict(
            session.execute(select(db.Event.kind, func.count()).group_by(db.Event.kind)).all()
        )
        per_mail = session.execute(
            select(db.Event.message_pk, func.count()).group_by(db.Event.message_pk)
        ).all()
    assert keys == {message_id_of(raw) for raw in mails}, context  # none missing
    assert len(list_incidents(engine)) == total - total // 10, context  # none doubled
    replies = total // 10
    assert kinds == {"created": total - replies, "comment": replies, "priority": replies}, context
    assert {n for _, n in per_mail} <= {1, 2}, context  # a reply: its comment and command
    assert messages(imap, "Processed") == total, context  # MOVE is atomic: no copies either
    engine.dispose()


def _take_write_lock(connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, tried every millisecond: SQLite's busy handler sleeps up to 100 ms
    between tries and could miss every gap between a fast daemon's batches until the backlog
    is done (then the signal lands after it)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def test_sigterm_finishes_the_mail_in_hand_and_exits_zero(
    sqlite_url, imap_mailbox, imap, daemon_process
):
    total = 400  # several seconds of work: the signal must land inside the backlog
    engine = ready_engine(sqlite_url)
    for n in range(total):
        imap.append("INBOX", make_mail(subject=f"drain {n}"))
    source = imap_source(imap_mailbox, batch_size=10)
    daemon = daemon_process(toml_config(sqlite_url, {"support": source})).start()
    wait_until(lambda: count(engine, db.Message) >= 10, what="the backlog under way")
    # Hold SQLite's write lock while the signal lands, so that the daemon, however fast the
    # machine, is inside the backlog when it learns it must stop (its next commit waits).
    holder = sqlite3.connect(engine.url.database or "", isolation_level=None, timeout=0)
    _take_write_lock(holder)
    daemon.send(signal.SIGTERM)
    wait_until(lambda: "stopping:" in daemon.text(), what="the daemon stopping")
    holder.close()  # rolls back, and the daemon's commit goes through
    assert daemon.wait(timeout=20) == 0
    stored = count(engine, db.Message)
    assert 10 <= stored < total  # it stopped inside the backlog
    assert messages(imap, "Processed") == stored  # everything committed was also settled
    assert messages(imap) == total - stored  # and nothing else was touched
    assert "mailproc daemon stopped" in daemon.text()
    engine.dispose()


def test_sighup_reloads_the_configuration_and_keeps_the_old_one_when_the_new_is_bad(
    sqlite_url, imap_mailbox, imap, daemon_process
):
    engine = ready_engine(sqlite_url)
    source = imap_source(imap_mailbox, service="general", idle_seconds=600)
    daemon = daemon_process(toml_config(sqlite_url, {"support": source})).start()
    wait_until(lambda: polled_once(engine), what="the first pass")
    imap.append("INBOX", make_mail(subject="before the reload"))
    wait_until(lambda: count(engine, db.Incident) == 1)

    moved = imap_source(imap_mailbox, service="network", idle_seconds=600)
    daemon.config.write_text(toml_config(sqlite_url, {"support": moved}))
    daemon.send(signal.SIGHUP)
    wait_until(lambda: daemon.text().count("mailproc daemon running") == 2, what="the reload")
    imap.append("INBOX", make_mail(subject="after the reload"))
    wait_until(lambda: count(engine, db.Incident) == 2)

    daemon.config.write_text("this is = not [valid")
    daemon.send(signal.SIGHUP)
    wait_until(lambda: "reload refused" in daemon.text(), what="the refusal")
    imap.append("INBOX", make_mail(subject="after a bad reload"))
    wait_until(lambda: count(engine, db.Incident) == 3)
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    services = [(i.title, i.service) for i in list_incidents(engine)]
    assert services == [
        ("before the reload", "general"),
        ("after the reload", "network"),
        ("after a bad reload", "network"),
    ]
    engine.dispose()
