"""Hostile and broken mail through the Desk, on SQLite and PostgreSQL: each one applied or
quarantined with a reason, none raising; reused Message-IDs; the last line of defence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from mailproc.config.safety import LimitsConfig
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition
from mailproc.inbound.fingerprint import legacy_fingerprint
from mailproc.store import db
from mailproc.store.queries import get_incident
from tests.support.hostile import BAD_NAMES, CASES, SIZE_LIMIT, ZIP
from tests.support.mailfactory import make_mail


@pytest.fixture
def desk(settings, engine, clock) -> Desk:
    limits = LimitsConfig(max_message_bytes=SIZE_LIMIT)
    return Desk(settings.model_copy(update={"limits": limits}), engine, clock)


def stored(engine, key: str) -> db.Message:
    with Session(engine) as session:
        return session.scalars(select(db.Message).where(db.Message.key == key)).one()


def test_every_hostile_mail_is_applied_or_quarantined_with_a_reason(desk, engine):
    """One database for the whole suite: each mail must also leave it usable for the next."""
    for case in CASES:
        outcome = desk.handle(case.raw)
        assert outcome.stored, case.name
        expected = (
            Disposition.QUARANTINED if case.outcome == "quarantined" else Disposition.PROCESSED
        )
        assert outcome.disposition is expected, f"{case.name}: {outcome.summary}"
        row = stored(engine, outcome.key)
        assert row.raw == case.raw, case.name  # kept whole, whatever happened to it
        if expected is Disposition.QUARANTINED:
            assert row.outcome == "quarantined" and row.reason, case.name
        else:
            assert row.incident_id is not None, case.name
        again = desk.handle(case.raw)
        assert again.disposition is Disposition.DUPLICATE, case.name
        assert again.key == outcome.key, case.name


def test_an_oversized_mail_is_stored_whole_unparsed_under_its_message_id(desk, engine):
    (case,) = [c for c in CASES if c.name == "oversized"]
    outcome = desk.handle(case.raw)
    assert outcome.key == "big.x@example.net" and outcome.sender == "eve@example.net"
    row = stored(engine, outcome.key)
    assert row.reason == (
        f"too large: {len(case.raw)} bytes, over limits.max_message_bytes ({SIZE_LIMIT})"
    )
    assert row.subject == "hostile" and row.raw == case.raw
    with Session(engine) as session:
        assert session.scalars(select(db.Attachment)).all() == []


def test_attachments_are_never_unpacked_and_never_named_by_the_sender(desk, engine):
    (case,) = [c for c in CASES if c.name == "attachment names"]
    outcome = desk.handle(case.raw)
    with Session(engine) as session:
        rows = session.scalars(select(db.Attachment).order_by(db.Attachment.position)).all()
        bytes_of = {blob.sha256: blob.content for blob in session.scalars(select(db.Blob))}
    assert len(rows) == 1 + len(BAD_NAMES)
    bomb, *named = rows
    assert (bytes_of[bomb.sha256], bomb.content_type, bomb.filename) == (
        ZIP,
        "application/zip",
        "bomb.zip",
    )
    assert [r.stored_name for r in rows] == [
        f"m1-a{n}{'.zip' if n == 0 else '.bin'}" for n in range(len(rows))
    ]
    for row in named:
        assert "/" not in row.filename and "\\" not in row.filename and ".." not in row.filename
        assert row.filename.isprintable() and "\u202e" not in row.filename
        assert len(row.filename) <= 255
    names = [r.filename for r in named]
    assert names[:2] == ["passwd", "evil.dll"] and names[2].startswith("evilname")
    assert names[3] == "invoicefdp.exe" and names[5] == ""
    assert outcome.incident == 1


def test_a_crlf_in_a_display_name_never_changes_the_sender(desk, engine):
    (case,) = [c for c in CASES if c.name == "CR/LF in a display name"]
    outcome = desk.handle(case.raw)
    assert outcome.sender == "eve@example.net"
    assert get_incident(engine, outcome.incident).incident.reporter == "eve@example.net"


def test_two_from_fields_are_quarantined_under_the_first_message_id(desk, engine):
    (case,) = [c for c in CASES if c.name == "duplicated headers"]
    outcome = desk.handle(case.raw)
    assert (outcome.disposition, outcome.key) == (Disposition.QUARANTINED, "dup.1@example.net")
    assert outcome.summary == "malformed From: 2 From fields"


def test_a_message_id_reused_by_another_mail_is_applied_under_its_content_key(desk, engine):
    first = desk.handle(make_mail(message_id="reused@x", subject="Printer on fire"))
    other = make_mail(message_id="reused@x", subject="VPN down", sender="bob@example.org")
    second = desk.handle(other)
    assert second.disposition is Disposition.PROCESSED and second.incident != first.incident
    assert second.key.startswith("sha256:")
    row = stored(engine, second.key)
    assert row.message_id == "reused@x"
    assert row.reason == (
        "Message-ID <reused@x> was already used by another mail; applied under its content key"
    )
    assert get_incident(engine, second.incident).incident.title == "VPN down"
    # each of the two is still applied exactly once, however often it comes again
    assert desk.handle(other).disposition is Disposition.DUPLICATE
    assert desk.handle(make_mail(message_id="reused@x", subject="Printer on fire")).key == (
        "reused@x"
    )


def test_the_same_mail_delivered_twice_with_other_trace_headers_is_a_duplicate(desk, engine):
    raw = SUBMITTED + make_mail(
        message_id="twice@x", to="support@example.com, mail-support@example.com"
    )
    for_one = b"Delivered-To: support@example.com\r\nReceived: from mx (1.2.3.4) by a\r\n" + raw
    for_two = (
        b"Return-Path: <alice@example.org>\r\nDelivered-To: mail-support@example.com\r\n"
        b"X-Original-To: mail-support@example.com\r\nReceived: from mx (1.2.3.4) by b\r\n"
        b"Authentication-Results: mx.example.com; spf=none\r\n"
    ) + raw.replace(b"\r\n", b"\n")  # and from a Maildir, with bare line feeds
    first, second = desk.handle(for_one), desk.handle(for_two)
    assert second.disposition is Disposition.DUPLICATE and second.incident == first.incident


SUBMITTED = b"Received: from [192.0.2.7] by smtp.example.org with ESMTPSA id 4Q2Xy\r\n"


def test_without_a_message_id_the_fingerprint_is_the_key(desk, engine):
    raw = SUBMITTED + make_mail(subject="no id").replace(b"Message-ID:", b"X-Old-Id:")
    first = desk.handle(b"Received: by a\r\n" + raw)
    assert first.key.startswith("sha256:")
    assert desk.handle(b"Received: by b\r\n" + raw).disposition is Disposition.DUPLICATE
    assert desk.handle(raw.replace(b"no id", b"other")).disposition is Disposition.PROCESSED


@pytest.mark.parametrize("message_id", [None, "Message-ID: <alert@monitor.example.org>"])
def test_the_same_text_sent_twice_is_two_mails_not_a_duplicate(desk, engine, message_id):
    """A monitoring system's identical alerts an hour apart — without Message-ID and Date, or
    with a constant Message-ID: each was submitted on its own, so their first hops differ."""
    alert = (
        b"From: monitor@example.org\r\nTo: support@example.com\r\nSubject: disk full\r\n"
        + (message_id.encode() + b"\r\n" if message_id else b"")
        + b"\r\n/var is 100% full.\r\n"
    )
    first = b"Received: from monitor (192.0.2.9) by mx.example.com id 1A2B; 09:00\r\n" + alert
    second = b"Received: from monitor (192.0.2.9) by mx.example.com id 3C4D; 10:00\r\n" + alert
    outcomes = [desk.handle(first), desk.handle(second)]
    assert [o.disposition for o in outcomes] == [Disposition.PROCESSED, Disposition.PROCESSED]
    assert outcomes[0].incident != outcomes[1].incident
    assert desk.handle(b"Received: by mx2\r\n" + second).disposition is Disposition.DUPLICATE


def test_a_mail_stored_before_the_first_hop_counted_is_still_its_own_duplicate(desk, engine):
    raw = SUBMITTED + make_mail(subject="stored long ago")
    with_id = desk.handle(raw)
    with Session(engine) as session, session.begin():  # as the row was written before
        session.execute(update(db.Message).values(fingerprint=legacy_fingerprint(raw)))
    assert desk.handle(b"Received: by c\r\n" + raw).disposition is Disposition.DUPLICATE
    no_id = SUBMITTED + make_mail(subject="no id, long ago").replace(b"Message-ID:", b"X-Old:")
    with Session(engine) as session, session.begin():
        session.add(
            db.Message(
                key=f"sha256:{legacy_fingerprint(no_id)}",
                content_hash="",
                sender="",
                subject="",
                source="cli",
                outcome="processed",
                incident_id=with_id.incident,
                received_at=datetime(2026, 1, 1, tzinfo=UTC),
                raw=no_id,
            )
        )
    assert desk.handle(no_id).disposition is Disposition.DUPLICATE


def test_a_mail_that_cannot_be_stored_even_in_quarantine_does_not_raise(desk, engine, monkeypatch):
    def explode(*args, **kw):
        raise RuntimeError("the quarantine itself broke")

    monkeypatch.setattr(desk, "_quarantine", explode)
    outcome = desk.handle(b"")  # unparseable: goes straight to the (broken) quarantine
    assert outcome.disposition is Disposition.QUARANTINED and outcome.quarantined
    assert not outcome.stored and "the quarantine itself broke" in outcome.summary
    monkeypatch.undo()
    assert desk.handle(make_mail()).disposition is Disposition.PROCESSED
