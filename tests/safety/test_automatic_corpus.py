"""Every kind of automatic mail in the corpus is kept, and none opens an incident or is answered.

tests/data/automatic holds bounces (RFC 3464 reports of Postfix, Gmail, Exchange and sendmail;
free-text ones of Exim, qmail, Yahoo and older Exchange; a delay warning; bounces known only
by their sender's name, their Return-Path or their subject), auto-replies (Exchange and Gmail,
Precedence: auto_reply, OTRS, Request Tracker, Zammad, X-Autoreply, X-Autorespond) and list
mail (Mailman, Google Groups, ezmlm, majordomo, RFC 2369 headers alone, newsletters), written
the way those programs write them. The tests' other samples join them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mailproc.store import db
from tests.support.bounces import dsn, vacation_reply

DATA = Path(__file__).resolve().parent.parent / "data"
CORPUS = sorted((DATA / "automatic").glob("*.eml"))


def samples() -> list[tuple[str, bytes]]:
    found = [(path.name, path.read_bytes()) for path in CORPUS]
    found.append(("tests/data/mail/bounce.eml", (DATA / "mail" / "bounce.eml").read_bytes()))
    found.append(("bounces.dsn", dsn("mp1.9.aaaaaaaa.x.aaaaaaaaaaaaaaaa@example.com", "b@x.org")))
    found.append(("bounces.dsn headers", dsn("x@y", "c@x.org", headers_only=True)))
    found.append(("bounces.vacation", vacation_reply("D <d@example.org>", "x@y", "hello")))
    return found


def test_the_corpus_has_every_kind():
    names = [path.name for path in CORPUS]
    for kind in ("bounce", "autoreply", "list"):
        assert sum(name.startswith(kind) for name in names) >= 7, kind


def test_no_automatic_mail_opens_an_incident_or_gets_an_answer(desk, engine):
    for name, raw in samples():
        outcome = desk.handle(raw)
        assert outcome.automatic, f"{name}: {outcome.summary}"
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(db.Incident)) == 0
        assert session.scalar(select(func.count()).select_from(db.Outbox)) == 0
        reasons = dict(session.execute(select(db.Message.key, db.Message.reason)).all())
    assert len(reasons) == len(samples()) and all(reasons.values())


@pytest.mark.parametrize(
    ("name", "form"),
    [
        ("bounce_qmail.eml", "Qmail"),
        ("bounce_qmail_no_return_path.eml", "Qmail"),
        ("bounce_exim_plain.eml", "Exim"),
        ("bounce_exim_no_return_path.eml", "Exim"),
        ("bounce_yahoo.eml", "Yahoo"),
    ],
)
def test_a_free_text_bounce_is_named_by_its_format_in_the_record(desk, engine, name, form):
    outcome = desk.handle((DATA / "automatic" / name).read_bytes())
    assert f"({form} format)" in outcome.summary
    with Session(engine) as session:
        (reason,) = session.scalars(select(db.Message.reason))
    assert reason.startswith("bounce: ") and f"({form} format)" in reason
