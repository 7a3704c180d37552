"""A mail that disappears or cannot be read between SEARCH and FETCH never stops a batch.

The real Dovecot: after mailproc listed the folder, another client expunges one mail (Dovecot
then answers its FETCH with a NIL body) and a retention job leaves another unreadable on disk
(Dovecot refuses the whole FETCH). Each is logged with its UID and skipped; the rest of the
batch is applied and settled.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from mailproc.daemon.loop import poll_once
from mailproc.sources.imap import ImapSource
from mailproc.store.queries import list_incidents
from tests.support.daemon import ENV, imap_source, make_settings, messages, ready_engine
from tests.support.mailfactory import make_mail


def _file_of(maildir: Path, subject: str) -> Path:
    files = [p for sub in ("cur", "new") for p in (maildir / sub).iterdir()]
    return next(p for p in files if f"Subject: {subject}".encode() in p.read_bytes())


def test_mail_expunged_or_unreadable_after_the_listing_is_skipped_and_the_batch_completes(
    sqlite_url, dovecot, imap_mailbox, imap, monkeypatch, caplog
):
    for number in range(5):
        imap.append("INBOX", make_mail(subject=f"mail {number}", sender=f"u{number}@example.org"))
    unreadable: list[Path] = []
    listed: list[int] = []
    real_listing = ImapSource.listing

    def listing_then_interference(self):
        uids = real_listing(self)
        if uids and not unreadable:  # once, between SEARCH and FETCH
            listed.extend(uids)
            other = imap_mailbox.connect()
            other.select_folder("INBOX")
            other.delete_messages([uids[1]])
            other.expunge()
            other.logout()
            unreadable.append(_file_of(dovecot.maildir("support"), "mail 3"))
            os.chmod(unreadable[0], 0)
        return uids

    monkeypatch.setattr(ImapSource, "listing", listing_then_interference)
    engine = ready_engine(sqlite_url)
    settings = make_settings(sqlite_url, {"support": imap_source(imap_mailbox)})
    with caplog.at_level(logging.WARNING, logger="mailproc.sources.imap"):
        (result,) = poll_once(settings, ENV, [])
    monkeypatch.undo()
    assert result.ok, result.text
    assert result.text == "3 processed, 0 duplicate, 0 quarantined"
    titles = sorted(i.title for i in list_incidents(engine))
    assert titles == ["mail 0", "mail 2", "mail 4"]
    skipped = [r.getMessage() for r in caplog.records if "could not be fetched" in r.message]
    assert [m.split()[2] for m in skipped] == [str(listed[1]), str(listed[3])]  # by UID
    os.chmod(unreadable[0], 0o600)  # readable again: the next pass takes it
    (again,) = poll_once(settings, ENV, [])
    assert again.text == "1 processed, 0 duplicate, 0 quarantined"
    assert messages(imap) == 0
    engine.dispose()
