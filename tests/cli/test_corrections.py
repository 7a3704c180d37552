"""`mailproc incidents assign|move|priority|close|reopen|comment|note|relate|merge|…`: the
same workflow as mail, refusals explained (exit 5), the administrator as actor, notices as a
mail would queue them (SQLite and PostgreSQL)."""

from __future__ import annotations

import getpass
import json

from mailproc.store.db import make_engine
from mailproc.store.queries import get_incident
from tests.support.mailfactory import make_mail


def ingest(cli, tmp_path, *mails: bytes) -> None:
    for n, raw in enumerate(mails):
        path = tmp_path / f"m{n}.eml"
        path.write_bytes(raw)
        cli("ingest", str(path))


def detail(number: int):
    import os

    engine = make_engine(os.environ["MAILPROC_DATABASE_URL"])
    try:
        return get_incident(engine, number)
    finally:
        engine.dispose()


def test_an_assignment_is_applied_recorded_and_notified_as_mail_would(cli, tmp_path):
    ingest(cli, tmp_path, make_mail())
    out = cli("incidents", "assign", "INC-1", "tina").stdout
    assert out.splitlines()[:3] == [
        "INC-1: applied [ASSIGN tina]",
        "  notifies tina@example.com: assigned",
        "  notifies alice@example.org: assigned",
    ]
    shown = detail(1)
    assert (shown.incident.assignee, shown.incident.status) == ("tina", "Solution")
    assigned = next(e for e in shown.events if e.kind == "assigned")
    assert assigned.actor == f"cli:{getpass.getuser()}"


def test_refusals_are_explained_with_exit_5_and_change_nothing(cli, tmp_path):
    ingest(cli, tmp_path, make_mail())
    refused = cli("incidents", "assign", "INC-1", "nobody", code=5)
    assert "refused [ASSIGN nobody] (unknown person 'nobody'" in refused.stdout
    refused = cli("incidents", "reopen", "INC-1", code=5)
    assert "REOPEN is not allowed in status New (allowed in: Closed)" in refused.stdout
    assert detail(1).incident.status == "New"
    missing = cli("incidents", "close", "INC-9", code=4)
    assert "no incident INC-9" in missing.stderr


def test_acting_as_a_person_applies_their_permissions(cli, tmp_path):
    ingest(cli, tmp_path, make_mail(to="network-support@example.com"))
    refused = cli("incidents", "close", "INC-1", "--as", "tina", code=5)
    assert "tina@example.com may not use CLOSE; solvers of service network: sam" in refused.stdout
    cli("incidents", "close", "INC-1", "--as", "sam@example.com")
    closed = detail(1)
    assert closed.incident.status == "Closed" and closed.events[-1].actor == "sam@example.com"
    assert (
        "no configured person 'zed'"
        in cli("incidents", "wait", "INC-1", "--as", "zed", code=4).stderr
    )


def test_comments_notes_and_merges_from_the_command_line(cli, tmp_path):
    ingest(
        cli, tmp_path, make_mail(), make_mail(subject="Mail down", sender="Bob <bob@example.org>")
    )
    cli("incidents", "assign", "INC-1", "tina")
    note = cli("incidents", "note", "INC-1", "-", input=b"The relay again.\n").stdout
    assert "internal note on INC-1" in note and "alice@example.org" not in note
    comment = json.loads(cli("incidents", "comment", "INC-1", "Fixed soon.", "--json").stdout)
    assert comment["notices"] == [
        {"kind": "comment", "recipient": "alice@example.org"},
        {"kind": "comment", "recipient": "tina@example.com"},
    ]
    merged = json.loads(cli("incidents", "merge", "INC-2", "INC-1", "--json").stdout)
    assert merged["applied"] == ["[MERGE INC-1]"]
    assert detail(2).merged_into == 1
    into_closed = cli("incidents", "merge", "INC-1", "INC-2", code=5).stdout
    assert "INC-2 is Closed (closed): merge into an open incident" in into_closed
