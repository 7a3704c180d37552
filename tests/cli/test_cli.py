"""The command line: every command, its output, and exit codes scripts rely on."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailproc.cli import command
from tests.support.clirunner import use_demo_config
from tests.support.mailfactory import make_mail, message_id_of

ROOT = Path(__file__).parents[2]


@pytest.fixture
def run(cli):
    return cli


def test_init_is_idempotent(run):
    assert "database ready at revision" in run("init").output


def test_ingest_files_folders_maildir_mbox_and_stdin(run, tmp_path):
    first = make_mail(subject="Printer on fire")
    (tmp_path / "one.eml").write_bytes(first)
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "b.eml").write_bytes(make_mail(subject="second"))
    (folder / "a.eml").write_bytes(make_mail(subject="first"))
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(make_mail(subject="from maildir"))
    box = mailbox.mbox(tmp_path / "export.mbox")
    box.add(make_mail(subject="from mbox 1"))
    box.add(make_mail(subject="from mbox 2"))
    box.flush()
    result = run("ingest", "one.eml", "folder", "Maildir")
    assert "ingested: 4 processed, 0 duplicate, 0 quarantined" in result.stderr
    result = run("ingest", "--mbox", "export.mbox")
    assert "ingested: 2 processed, 0 duplicate, 0 quarantined" in result.stderr
    reply = make_mail(
        subject="Re: fire",
        body="still burning",
        in_reply_to=message_id_of(first),
        authenticated=True,
    )
    assert "comment on INC-1" in run("ingest", "-", input=reply).output
    titles = [i["title"] for i in json.loads(run("incidents", "list", "--json").output)]
    assert titles == [
        "Printer on fire",
        "first",
        "second",
        "from maildir",
        "from mbox 1",
        "from mbox 2",
    ]


def test_a_saved_mail_is_one_mail_and_an_mbox_only_on_request(run, tmp_path):
    body = "Logs below.\n\nFrom the server:\nFrom bob@example.org Mon Dec  1 10:00:00 2026\n"
    saved = b"From alice@example.org Sat Dec  5 09:00:00 2026\n" + make_mail(
        subject="a saved mail", body=body
    )
    (tmp_path / "saved.eml").write_bytes(saved)
    result = run("ingest", "saved.eml")
    assert "ingested: 1 processed, 0 duplicate, 0 quarantined" in result.stderr
    (incident,) = json.loads(run("incidents", "list", "--json").output)
    assert incident["title"] == "a saved mail"
    shown = run("incidents", "show", "INC-1").output
    assert "From bob@example.org Mon Dec  1" in shown  # the body line stayed in the body
    box = b"".join(
        b"From x@example.org Sat Dec  5 09:00:00 2026\n" + make_mail(subject=s, body=b) + b"\n"
        for s, b in (("boxed 1", ">From the quoted line\n"), ("boxed 2", "second"))
    )
    (tmp_path / "export.mbox").write_bytes(box)
    assert "ingested: 2 processed" in run("ingest", "--mbox", "export.mbox").stderr
    assert "From the quoted line" in run("incidents", "show", "INC-2").output
    assert ">From the quoted line" not in run("incidents", "show", "INC-2").output


def test_reingesting_is_a_no_op(run, tmp_path):
    (tmp_path / "m.eml").write_bytes(make_mail())
    run("ingest", "m.eml")
    assert "1 duplicate" in run("ingest", "m.eml").stderr
    assert len(json.loads(run("incidents", "list", "--json").output)) == 1


def test_unparseable_mail_is_quarantined_reported_and_exit_zero(run, tmp_path):
    (tmp_path / "empty.eml").write_bytes(b"")
    result = run("ingest", "empty.eml")
    assert "empty.eml: quarantined: unparseable" in result.stderr


def test_missing_path_exits_one(run):
    assert "no such file" in run("ingest", "nope.eml", code=1).stderr


def test_incidents_list_filters_and_show(run, tmp_path):
    (tmp_path / "a.eml").write_bytes(make_mail(subject="mail down"))
    (tmp_path / "b.eml").write_bytes(
        make_mail(subject="net down", to="network-support@example.com")
    )
    run("ingest", "a.eml", "b.eml")
    table = run("incidents", "list", "--service", "network").output
    assert "INC-2" in table and "INC-1" not in table
    assert "INC-1" in run("incidents", "list", "--status", "New").output
    shown = run("incidents", "show", "INC-1").output
    assert "INC-1  mail down" in shown and "opened in email: mail down" in shown
    data = json.loads(run("incidents", "show", "inc-1", "--json").output)
    assert data["incident"]["status"] == "New" and data["events"][0]["kind"] == "created"


def test_unknown_incident_exits_four(run):
    assert "no incident INC-9" in run("incidents", "show", "INC-9", code=4).stderr


def test_bad_reference_is_a_usage_error(run):
    run("incidents", "show", "banana", code=2)


def test_problems_lifecycle(run, tmp_path):
    assert run("problems", "add", "--title", "Cert expired", "--workaround", "renew").output == (
        "PRB-1\n"
    )
    (tmp_path / "a.eml").write_bytes(make_mail())
    run("ingest", "a.eml")
    relate = make_mail(sender="tina@example.com", subject="[INC-1] [RELATE PRB-1]")
    run("ingest", "-", input=relate)
    assert "INC-1" in run("problems", "show", "PRB-1").output
    assert "known_error" in run("problems", "update", "PRB-1", "--status", "known_error").output
    assert "resolved (1 related incidents)" in run("problems", "resolve", "PRB-1").output
    listed = json.loads(run("problems", "list", "--json").output)
    assert listed[0]["status"] == "resolved" and listed[0]["incidents"] == [1]
    run("problems", "show", "PRB-5", code=4)


def test_config_errors_exit_three_and_name_the_key(tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_text('support_address = "x@y.z"\ndefault_service = "ghost"\n[services.it]\n')
    result = CliRunner().invoke(command(), ["--config", str(bad), "config", "check"])
    assert result.exit_code == 3
    assert (
        f"FAIL  configuration: {bad}: (top level): default_service: unknown service 'ghost'"
        in result.stdout
    )


def test_commands_need_an_initialised_database(tmp_path, monkeypatch):
    use_demo_config(monkeypatch, tmp_path)
    monkeypatch.setenv("MAILPROC_DATABASE_URL", f"sqlite:///{tmp_path}/fresh.db")
    result = CliRunner().invoke(command(), ["incidents", "list"])
    assert result.exit_code == 3 and "run `mailproc init`" in result.stderr
    assert f"SQLite file {tmp_path}/fresh.db: the database is at revision none" in result.stderr


def test_workflows_prints_tables_and_instructions(run):
    out = run("workflows", "network").output
    assert "workflow resolved" in out and "New (open): [ASSIGN] → New" in out
    assert "instructions:" in out


def test_every_command_has_help():
    runner = CliRunner()
    group = command()
    for name, sub in group.commands.items():
        result = runner.invoke(group, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, name
        for inner in getattr(sub, "commands", {}):
            assert runner.invoke(group, [name, inner, "--help"]).exit_code == 0


def test_demo_shows_a_whole_lifecycle(tmp_path):
    """As a new user runs it: a real process, in an empty folder, no config, no mail server."""
    result = subprocess.run(
        [sys.executable, "-m", "mailproc", "demo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    out = result.stdout
    for expected in (
        "created INC-1 in email",
        "applied [ASSIGN tina] [PRIORITY P1]",
        "refused [ASIGN sam]",
        "related to PRB-1",
        "status Solution → Closed (CLOSE)",
        "notifies alice@example.org: [INC-1] We received your report",
        "notifies tina@example.com: [INC-1] Commands refused",
        "closed → alice@example.org: pending",
        "PRB-1: Exchange certificate expired\n      Renew the certificate",
        "internal note on INC-1",
        "notifies exchange-team@example.com: [INC-1] Internal note",
        "1  outlook-disconnected.png  image/png  70 B  from alice@example.org",
        "Attached: outlook-disconnected.png (image/png, 70 bytes)",
        "notifies servicedesk@example.com: Queue of general: 1 incident(s) to look at",
        "  Unassigned (1)\n    INC-2  Printer on floor 4 prints blank pages",
        # her answer names the notice's signed Message-ID: a comment, not a mail kept aside
        "answers the notice she got (quoted history is not copied):\n    comment on INC-1\n",
    ):
        assert expected in out
    assert "kept as an internal note" not in out
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "var").exists()


def test_export_writes_one_json_line_per_incident(run, tmp_path):
    first = make_mail(subject="mail down", message_id="zz-first@example.org")
    (tmp_path / "a.eml").write_bytes(first)
    reply = make_mail(
        subject="Re: x",
        body="more",
        in_reply_to=message_id_of(first),
        message_id="10@x.org",
        authenticated=True,
    )
    (tmp_path / "b.eml").write_bytes(reply)
    (tmp_path / "c.eml").write_bytes(make_mail(subject="second"))
    run("ingest", "a.eml", "b.eml", "c.eml")
    result = run("export")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["ref"] for line in lines] == ["INC-1", "INC-2"]
    assert lines[0]["message_ids"] == [message_id_of(first), message_id_of(reply)]  # arrival
    assert [e["kind"] for e in lines[0]["events"]] == ["created", "comment"]
    assert "exported 2 incidents" in result.stderr
    assert run("export", "--since", "2999-01-01").stdout == ""


def test_ingest_parsing_ahead_in_workers_applies_every_mail_once_in_order(run, tmp_path):
    folder = tmp_path / "backlog"
    folder.mkdir()
    reports = [make_mail(subject=f"report {n:03}") for n in range(60)]
    replies = [
        make_mail(subject=f"Re: report {n:03}", body="more", in_reply_to=message_id_of(mail))
        for n, mail in enumerate(reports)
    ]
    mails = [m for pair in zip(reports, replies, strict=True) for m in pair]  # reply after report
    mails[10] = b"no header block at all"  # poison among them
    for n, mail in enumerate(mails):
        (folder / f"{n:04}.eml").write_bytes(mail)
    result = run("ingest", "-q", "--jobs", "1", "--batch-size", "25", "backlog")
    assert "ingested: 119 processed, 0 duplicate, 1 quarantined" in result.stderr
    listed = json.loads(run("incidents", "list", "--json").output)
    # report 005 is the poison: its reply waits for it (mailproc.desk.waiting)
    assert [i["title"] for i in listed] == [f"report {n:03}" for n in range(60) if n != 5]
    again = run("ingest", "-q", "--jobs", "1", "backlog")  # a second pass changes nothing
    assert "ingested: 0 processed, 120 duplicate, 0 quarantined" in again.stderr


def test_ingest_quarantines_a_mail_that_killed_it_twice_and_applies_the_rest(
    tmp_path, database_url
):
    from tests.support.crashing import CRASH_HEADER

    folder = tmp_path / "mail"
    folder.mkdir()
    for n in range(5):
        raw = make_mail(subject=f"mail {n}")
        (folder / f"{n}.eml").write_bytes(CRASH_HEADER + b"\r\n" + raw if n == 1 else raw)
    config = tmp_path / "mailproc.toml"  # the demo's configuration
    config.write_text((ROOT / "mailproc" / "config" / "default_config.toml").read_text())
    env = {
        **os.environ,
        "MAILPROC_DATABASE_URL": database_url,
        "MAILPROC_SECRET": "x",
        "MAILPROC_CONFIG": str(config),
    }
    crashing = [sys.executable, str(ROOT / "tests/support/crashing.py")]
    subprocess.run([*crashing, "init"], env=env, check=True, capture_output=True)
    runs = [
        subprocess.run(
            [*crashing, "ingest", "--jobs", "0", str(folder)],
            env=env,
            capture_output=True,
            text=True,
        )
        for _ in range(3)
    ]
    assert [r.returncode for r in runs] == [-9, -9, 0], runs[-1].stderr
    assert "1.eml: quarantined: crashed the processor 2 times" in runs[2].stderr
    assert "ingested: 3 processed, 1 duplicate, 1 quarantined" in runs[2].stderr
    # the second run applied mail 0 alone, then died on mail 1 again; the third did the rest
    assert "0.eml: created INC-" in runs[1].stdout


def test_ingest_a_strangers_200_cc_reply_and_a_forged_reply_reach_nobody_outside(
    run, tmp_path, database_url
):
    from sqlalchemy import create_engine, select
    from sqlalchemy.orm import Session

    from mailproc.store import db

    report = make_mail(subject="VPN down", sender="Alice <alice@example.org>")
    cc = ", ".join(f"p{n}@outside.example.net" for n in range(200))
    stranger = make_mail(
        sender="eve@evil.example.net", cc=cc, body="hello", in_reply_to=message_id_of(report)
    )
    forged = make_mail(
        sender="Tina <tina@example.com>",
        body="I closed your account, send your password.",
        in_reply_to=message_id_of(report),
        authenticated=False,
    )
    for name, raw in (("1.eml", report), ("2.eml", stranger), ("3.eml", forged)):
        (tmp_path / name).write_bytes(raw)
    result = run("ingest", "1.eml", "2.eml", "3.eml")
    assert result.output.count("kept as an internal note") == 2
    engine = create_engine(database_url)
    with Session(engine) as session:
        recipients = set(session.scalars(select(db.Outbox.recipient)))
        participants = list(session.scalars(select(db.Participant.email)))
    engine.dispose()
    assert participants == []
    # the acknowledgment, the first line's and the team's notices; nothing to the 200, to eve,
    # to alice about the forged words, or to the address tina's name was forged under
    assert recipients == {
        "alice@example.org",
        "servicedesk@example.com",
        "exchange-team@example.com",
    }
