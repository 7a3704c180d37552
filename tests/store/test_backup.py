"""`mailproc backup` while mail is being ingested, and a restore into a fresh database whose
export matches the original's."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.clirunner import demo_cli
from tests.support.mailfactory import make_mail

MAILS = 200


@pytest.fixture
def desk(tmp_path, monkeypatch):
    return demo_cli(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'live.db'}")


def test_a_backup_taken_while_mail_is_ingested_restores_to_a_consistent_desk(
    desk, tmp_path, monkeypatch
):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for n in range(MAILS):
        sender = f"user{n}@example.org"
        (inbox / f"{n:04}.eml").write_bytes(make_mail(subject=f"case {n}", sender=sender))
    ingest = subprocess.Popen(  # commits mail after mail while the backups are taken
        [
            sys.executable,
            "-m",
            "mailproc",
            "ingest",
            "-q",
            "--jobs",
            "0",
            "--batch-size",
            "1",
            str(inbox),
        ],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    taken = 0
    while ingest.poll() is None or taken == 0:
        desk("backup", "--force", str(tmp_path / "backup.db"))
        taken += 1
    assert ingest.wait(timeout=300) == 0, ingest.stderr.read() if ingest.stderr else ""

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
