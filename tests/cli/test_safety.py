"""`automatic list`, `undeliverable list|clear`, `limits`, and what `incidents show` says about
bounces and suppressed notices: an administrator sees what the loop protection did."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from mailproc.store import db
from mailproc.store.db import make_engine
from tests.support.bounces import dsn, vacation_reply
from tests.support.clirunner import invoker
from tests.support.mailfactory import make_mail, message_id_of

CONFIG = """
support_address = "support@example.com"
default_service = "general"
[services.general]
first_line = "desk@example.com"
[people.tina]
email = "tina@example.com"
[people.nora]
email = "nora@example.com"
role = "admin"
[limits]
new_incidents_per_sender_per_hour = 2
[bounces]
threshold = 1  # one hard bounce suspends, to keep this test short

[security]
trusted_authserv_ids = ["mx.example.com"]
"""


@pytest.fixture
def run(tmp_path, monkeypatch, database_url):
    config = tmp_path / "mailproc.toml"
    config.write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILPROC_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILPROC_SECRET", "cli tests")
    invoke = invoker("--config", str(config))
    invoke("init")
    return invoke


def ack_id(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            return session.scalars(
                select(db.Outbox.message_id).where(db.Outbox.kind == "acknowledgment")
            ).first()
    finally:
        engine.dispose()


def test_an_administrator_sees_bounces_automatic_mail_and_dead_addresses(run, database_url):
    first = make_mail(to="support@example.com")
    run("ingest", "-", input=first)
    bounced = run("ingest", "-", input=dsn(ack_id(database_url), "alice@example.org")).stdout
    assert "bounce of our acknowledgment recorded on INC-1: alice@example.org 5.1.1" in bounced
    assert bounced.rstrip().endswith("permanent, bounce score 1.0 of 1, address suspended")
    away = vacation_reply("Bob <bob@example.org>", "elsewhere@example.org", "hello")
    assert "kept, not answered" in run("ingest", "-", input=away).stdout
    table = run("automatic", "list").stdout
    assert table.splitlines()[0].split()[:4] == ["RECEIVED", "KIND", "INCIDENT", "SENDER"]
    assert "autoreply" in table and "bounce    INC-1" in table
    listed = json.loads(run("automatic", "list", "--kind", "bounce", "--json").stdout)
    assert [(m["kind"], m["incident"]) for m in listed] == [("bounce", 1)]
    table = run("undeliverable", "list").stdout.splitlines()
    assert table[0].split() == [
        "ADDRESS",
        "SCORE",
        "SUSPENDED",
        "PROBE",
        "STATUS",
        "INCIDENT",
        "REASON",
    ]
    assert table[1].split()[:2] == ["alice@example.org", "1.0"]
    # a comment would tell alice: suppressed, and `incidents show` says so and why
    comment = make_mail(sender="tina@example.com", body="Looking", in_reply_to=message_id_of(first))
    run("ingest", "-", input=comment)
    shown = run("incidents", "show", "INC-1").stdout
    assert "acknowledgment to alice@example.org bounced: 5.1.1" in shown
    assert "comment → alice@example.org: suppressed: address undeliverable since" in shown
    cleared = run("undeliverable", "clear", "alice@example.org").stdout
    assert cleared.startswith("alice@example.org:")
    gone = run("undeliverable", "clear", "alice@example.org", code=4)
    assert "has no bounces recorded" in gone.stderr
    assert json.loads(run("undeliverable", "list", "--json").stdout) == []


def test_limits_shows_the_senders_over_their_limit(run):
    for n in range(3):
        run("ingest", "-", input=make_mail(subject=f"flood {n}", to="support@example.com"))
    text = run("limits").stdout
    assert "answers (acknowledgments, transcripts) in the last hour: 2 of 1000" in text
    assert "senders over 2 new incidents in the last hour: alice@example.org (3)" in text
    view = json.loads(run("limits", "--json").stdout)
    assert view["senders"] == [["alice@example.org", 3]] and view["breakers"] == []
    shown = run("incidents", "show", "INC-3").stdout
    assert "not acknowledged: 3 new incidents from alice@example.org within an hour" in shown
