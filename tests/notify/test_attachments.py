"""Attachments reach the people who work the incident (SQLite and PostgreSQL): attached to the
notices of the team, the assignee and the watchers up to the size limit, listed beyond it and
for program files, never echoed back to their sender, never outside the desk for a note; shown
by `incidents show`, `attachments list|get` and the export; the bytes stored once."""

from __future__ import annotations

import json

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from mailproc.config.settings import NotificationsConfig
from mailproc.desk.mail import Desk
from mailproc.store import db
from mailproc.store.db import make_engine
from mailproc.store.export import export_lines
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail
from tests.support.notices import notice_to

ALICE = "Alice <alice@example.org>"
TINA = "Tina <tina@example.com>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
LOG = b"09:00:01 connect relay.example.com: timeout\n" * 50


def files_of(mail) -> dict[str, bytes]:
    return {a.filename: a.content for a in mail.attachments}


def report(desk: Desk, *files: tuple[str, str, bytes], **kw) -> int:
    raw = make_mail(sender=ALICE, attachments=list(files), **kw)
    return desk.handle(raw).incident


def test_the_team_notice_carries_the_reports_files_and_the_reporter_gets_none_back(desk, engine):
    report(desk, ("screen.png", "image/png", PNG), ("outlook.log", "text/plain", LOG))
    team = notice_to(engine, "servicedesk@example.com", "new_incident")
    assert files_of(team) == {"screen.png": PNG, "outlook.log": LOG}
    assert "1. screen.png (image/png, 2.0 KiB): attached" in team.text
    ack = notice_to(engine, "alice@example.org", "acknowledgment")
    assert ack.attachments == ()
    assert "We keep the 2 file(s) you sent with it: screen.png, outlook.log." in ack.text


def test_files_over_the_limit_or_of_program_types_are_listed_never_dropped(settings, engine, clock):
    notifications = NotificationsConfig(attachments_max_bytes=3000)
    desk = Desk(settings.model_copy(update={"notifications": notifications}), engine, clock)
    number = report(
        desk,
        ("screen.png", "image/png", PNG),  # 2,056 bytes: fits
        ("outlook.log", "text/plain", LOG),  # 2,200 more: over the 3,000 of the whole mail
        ("fix.exe", "application/octet-stream", b"MZ\x90\x00"),
    )
    team = notice_to(engine, "servicedesk@example.com", "new_incident")
    assert list(files_of(team)) == ["screen.png"]
    body = " ".join(team.text.split())
    assert "2. outlook.log (text/plain, 2.1 KiB): too large to attach (at most 2.9 KiB" in body
    assert "3. fix.exe (application/octet-stream, 4 B): not sent by mail (a program file)" in body
    assert f"mailproc attachments get INC-{number} NUMBER -o FILE" in body


def test_a_solvers_file_goes_to_the_reporter_but_a_notes_files_stay_inside(desk, engine):
    number = report(desk)
    desk.handle(make_mail(sender=TINA, subject=f"Re: [INC-{number}] [ASSIGN]"))
    fix = make_mail(
        sender=TINA,
        subject=f"Re: [INC-{number}] try this",
        attachments=[("settings.reg", "text/plain", b"REGEDIT4\n")],
    )
    desk.handle(fix)
    assert files_of(notice_to(engine, "alice@example.org", "comment")) == {
        "settings.reg": b"REGEDIT4\n"
    }
    note = make_mail(
        sender=TINA,
        subject=f"Re: [INC-{number}] [NOTE] [CLOSE]",
        body="the relay's config, for the team",
        attachments=[("relay.conf", "text/plain", b"password=hunter2\n")],
    )
    desk.handle(note)
    closed = notice_to(engine, "alice@example.org", "closed")
    assert closed.attachments == () and "relay.conf" not in closed.text
    team = notice_to(engine, "exchange-team@example.com", "note")
    assert files_of(team) == {"relay.conf": b"password=hunter2\n"}
    public = next(export_lines(engine, public=True))
    assert [a["filename"] for a in public["attachments"]] == ["settings.reg"]


def test_the_same_bytes_are_stored_once_and_numbered_per_incident(desk, engine):
    first = report(desk, ("logo.png", "image/png", PNG))
    second = report(desk, ("logo.png", "image/png", PNG), ("outlook.log", "text/plain", LOG))
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(db.Blob)) == 2
        assert session.scalar(select(func.count()).select_from(db.Attachment)) == 3
    assert [a.number for a in get_incident(engine, first).attachments] == [1]
    files = get_incident(engine, second).attachments
    assert [(a.number, a.filename, a.size) for a in files] == [
        (1, "logo.png", len(PNG)),
        (2, "outlook.log", len(LOG)),
    ]


def test_incidents_show_attachments_list_and_get_and_the_export(cli, tmp_path):
    run = cli
    mail = tmp_path / "mail.eml"
    mail.write_bytes(
        make_mail(
            sender=ALICE,
            attachments=[("screen.png", "image/png", PNG), ("outlook.log", "text/plain", LOG)],
        )
    )
    run("ingest", str(mail))
    shown = run("incidents", "show", "INC-1").output
    assert "  attachments:\n     1  screen.png  image/png  2.0 KiB  from alice@example.org" in shown
    detail = json.loads(run("incidents", "show", "INC-1", "--json").output)
    assert [a["filename"] for a in detail["attachments"]] == ["screen.png", "outlook.log"]
    listed = run("attachments", "list", "INC-1").output.splitlines()
    assert listed[1].startswith("2  outlook.log  text/plain  2.1 KiB  from alice@example.org")
    assert run("attachments", "get", "INC-1", "2").stdout_bytes == LOG
    out = tmp_path / "screen.png"
    run("attachments", "get", "INC-1", "1", "-o", str(out))
    assert out.read_bytes() == PNG
    missing = run("attachments", "get", "INC-1", "3", code=4)
    assert "INC-1 has no attachment 3: it has 2" in missing.stderr
    exported = json.loads(run("export").stdout.splitlines()[0])
    assert [(a["filename"], a["size"]) for a in exported["attachments"]] == [
        ("screen.png", len(PNG)),
        ("outlook.log", len(LOG)),
    ]


def test_attachments_stored_before_the_blobs_migration_keep_their_bytes(settings):
    from alembic import command

    from mailproc.store.schema import _config

    engine = make_engine(settings.database_url)
    config = _config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0007")
        connection.execute(
            text(
                "INSERT INTO messages (id, key, content_hash, sender, subject, source, outcome, "
                "received_at, raw) VALUES (1, 'k', 'h', 'a@example.org', 's', 'cli', "
                "'processed', '2026-11-23 09:00:00', :raw)"
            ),
            {"raw": b"raw"},
        )
        for n in (0, 1):  # the same bytes twice
            connection.execute(
                text(
                    "INSERT INTO attachments (message_pk, position, filename, stored_name, "
                    "content_type, size, content) VALUES (1, :n, 'a.png', 'm1-a0.png', "
                    "'image/png', :size, :content)"
                ),
                {"n": n, "size": len(PNG), "content": PNG},
            )
        command.upgrade(config, "head")
    with Session(engine) as session:
        (blob,) = session.scalars(select(db.Blob)).all()
        rows = session.scalars(select(db.Attachment)).all()
    assert bytes(blob.content) == PNG and {r.sha256 for r in rows} == {blob.sha256}
    engine.dispose()
