"""A local Maildir source: the same guarantees as IMAP, settling by rename."""

from __future__ import annotations

import logging
import mailbox
from pathlib import Path

from mailproc.daemon.loop import poll_once
from mailproc.desk.mail import Desk
from mailproc.store import db
from mailproc.store.queries import list_incidents
from tests.support.daemon import count, make_settings, ready_engine, running, wait_until
from tests.support.mailfactory import make_mail

GARBAGE = b"no header block here\n"


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def maildir_source(path: Path, **overrides: object) -> dict[str, object]:
    return {"kind": "maildir", "path": str(path), "poll_seconds": 0.05, **overrides}


def test_maildir_mail_is_applied_then_renamed_into_processed_or_quarantine(sqlite_url, tmp_path):
    engine = ready_engine(sqlite_url)
    root = tmp_path / "Maildir"
    box = mailbox.Maildir(root, create=True)
    box.add(make_mail(subject="from the mail host"))
    settings = make_settings(sqlite_url, {"local": maildir_source(root, service="network")})
    with running(settings):
        wait_until(lambda: count(engine, db.Incident) == 1, what="the waiting mail")
        box.add(make_mail(subject="delivered while running"))
        (root / "new" / "garbage.eml").write_bytes(GARBAGE)
        wait_until(lambda: len(files(root / ".Processed" / "cur")) == 2, what="the new mail")
        wait_until(lambda: len(files(root / ".Quarantine" / "cur")) == 1, what="the garbage")
    assert files(root / "new") == files(root / "cur") == []
    assert all(name.endswith(":2,S") for name in files(root / ".Processed" / "cur"))
    assert files(root / ".Quarantine" / "cur") == ["garbage.eml:2,"]  # left unread
    assert sorted(box.list_folders()) == ["Processed", "Quarantine"]  # proper Maildir++ folders
    assert [(i.title, i.service) for i in list_incidents(engine)] == [
        ("from the mail host", "network"),
        ("delivered while running", "network"),
    ]
    engine.dispose()


def test_a_crash_between_commit_and_rename_only_renames_when_the_mail_is_met_again(
    sqlite_url, tmp_path
):
    engine = ready_engine(sqlite_url)
    root = tmp_path / "Maildir"
    raw = make_mail(subject="committed, not renamed")
    mailbox.Maildir(root, create=True).add(raw)
    settings = make_settings(sqlite_url, {"local": maildir_source(root)})
    Desk(settings, engine).handle(raw)  # the state SIGKILL leaves after the commit
    (result,) = poll_once(settings, {}, [])
    assert result.text == "0 processed, 1 duplicate, 0 quarantined"
    assert files(root / "new") == [] and len(files(root / ".Processed" / "cur")) == 1
    assert count(engine, db.Incident) == 1 and count(engine, db.Event) == 1
    engine.dispose()


def test_maildir_seen_mode_flags_in_place_and_a_large_backlog_reports_progress(
    sqlite_url, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    engine = ready_engine(sqlite_url)
    root = tmp_path / "Maildir"
    box = mailbox.Maildir(root, create=True)
    for n in range(120):
        box.add(make_mail(subject=f"bulk {n}"))
    settings = make_settings(sqlite_url, {"local": maildir_source(root, settle="seen")})
    (result,) = poll_once(settings, {}, [])
    assert result.text == "120 processed, 0 duplicate, 0 quarantined"
    assert files(root / "new") == [] and len(files(root / "cur")) == 120
    assert all(name.endswith(":2,S") for name in files(root / "cur"))
    assert any("backlog pass done: 120 of 120 mails" in r.getMessage() for r in caplog.records)
    (again,) = poll_once(settings, {}, [])
    assert again.text == "0 processed, 0 duplicate, 0 quarantined"
    engine.dispose()


def test_a_path_that_is_not_a_maildir_fails_the_pass_with_the_reason(sqlite_url, tmp_path):
    ready_engine(sqlite_url).dispose()
    settings = make_settings(sqlite_url, {"local": maildir_source(tmp_path / "missing")})
    (result,) = poll_once(settings, {}, [])
    assert not result.ok and "is not a Maildir" in result.text


def test_automatic_mail_settles_into_its_own_maildir_folder_in_seen_mode_too(sqlite_url, tmp_path):
    engine = ready_engine(sqlite_url)
    root = tmp_path / "Maildir"
    box = mailbox.Maildir(root, create=True)
    box.add(make_mail(subject="a person", sender="bob@example.org"))
    box.add(make_mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}))
    source = maildir_source(root, settle="seen", automatic_folder="Automatic")
    (result,) = poll_once(make_settings(sqlite_url, {"local": source}), {}, [])
    assert result.text == "2 processed, 0 duplicate, 0 quarantined"
    assert [name.endswith(":2,S") for name in files(root / "cur")] == [True]  # flagged in place
    assert len(files(root / ".Automatic" / "cur")) == 1
    assert [i.title for i in list_incidents(engine)] == ["a person"]
    engine.dispose()
