"""`mailproc backup` while the daemon ingests mail, and a restore into a fresh database whose
export matches the original's."""

from __future__ import annotations

import json
import mailbox

import pytest

from tests.support.clirunner import demo_cli
from tests.support.daemon import make_settings, running
from tests.support.mailfactory import make_mail

MAILS = 200


@pytest.fixture
def desk(tmp_path, monkeypatch):
    return demo_cli(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'live.db'}")


def settled(maildir: mailbox.Maildir) -> int:
    return len(maildir.get_folder("Processed")) if "Processed" in maildir.list_folders() else 0


def test_a_backup_taken_while_the_daemon_ingests_restores_to_a_consistent_desk(
    desk, tmp_path, monkeypatch
):
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    for n in range(MAILS):
        maildir.add(make_mail(subject=f"case {n}", sender=f"user{n}@example.org"))
    source = {"kind": "maildir", "path": str(tmp_path / "Maildir"), "batch_size": 5}
    settings = make_settings(f"sqlite:///{tmp_path / 'live.db'}", {"local": source})
    taken = 0
    with running(settings):  # commits five mails at a time while the backups are taken
        while settled(maildir) < MAILS or taken == 0:
            desk("backup", "--force", str(tmp_path / "backup.db"))
            taken += 1

    monkeypatch.setenv("MAILPROC_DATABASE_URL", f"sqlite:///{tmp_path / 'restored.db'}")
    (tmp_path / "backup.db").rename(tmp_path / "restored.db")
    desk("init")  # the restore procedure: put the file in place, then init (a no-op here)
    restored = [json.loads(line) for line in desk("export").stdout.splitlines()]
    monkeypatch.setenv("MAILPROC_DATABASE_URL", f"sqlite:///{tmp_path / 'live.db'}")
    live = [json.loads(line) for line in desk("export").stdout.splitlines()]
    assert len(live) == MAILS
    assert restored == live[: len(restored)]  # a prefix: the desk as of one commit
    assert restored


def test_backup_of_postgresql_points_to_pg_dump(tmp_path, monkeypatch, pg_url):
    run = demo_cli(monkeypatch, tmp_path, pg_url)
    result = run("backup", str(tmp_path / "x"), code=3)
    assert "for PostgreSQL use pg_dump" in result.stderr
