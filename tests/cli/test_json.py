"""`--json` on every command a script reads: one JSON document on stdout, the same exit code."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from mailproc.cli import command
from tests.support.clirunner import invoker, use_demo_config
from tests.support.mailfactory import make_mail

SCRIPTED = [
    ("init",),
    ("ingest",),
    ("poll",),
    ("send",),
    ("escalate",),
    ("status",),
    ("config", "check"),
    ("templates", "check"),
    ("workflows",),
    ("sla", "what-if"),
    ("sla", "explain"),
    ("sla", "report"),
    ("problems", "add"),
    ("problems", "list"),
    ("problems", "show"),
    ("incidents", "list"),
    ("incidents", "show"),
    ("incidents", "search"),
    ("incidents", "assign"),
    ("incidents", "note"),
    ("attachments", "list"),
    ("digest",),
    ("automatic", "list"),
    ("undeliverable", "list"),
    ("limits",),
]


@pytest.mark.parametrize("path", SCRIPTED, ids=" ".join)
def test_the_command_has_the_json_option(path):
    node = command()
    for name in path:
        node = node.get_command(click.Context(node), name)  # type: ignore[attr-defined]
    assert "--json" in {opt for p in node.params for opt in p.opts}


@pytest.fixture
def run(tmp_path, monkeypatch, smtp_server):
    monkeypatch.chdir(tmp_path)
    config = use_demo_config(monkeypatch, tmp_path)
    config.write_text(
        config.read_text()
        + f'\n[smtp]\nhost = "127.0.0.1"\nport = {smtp_server.port}\nsecurity = "none"\n'
    )
    monkeypatch.setenv("MAILPROC_DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}")
    return invoker()


def data(result):
    return json.loads(result.stdout)


def test_the_summaries_of_the_working_commands_as_json(run, smtp_server):
    assert data(run("init", "--json"))["revision"]
    ingested = data(run("ingest", "--json", "-", input=make_mail()))
    assert ingested["counts"] == {"processed": 1, "duplicate": 0, "quarantined": 0}
    assert ingested["mails"][0]["incident"] == 1
    assert ingested["mails"][0]["source"] == "<stdin>"
    assert data(run("escalate", "--once", "--json")) == {"escalated": 0}
    assert data(run("problems", "add", "--title", "VPN", "--json")) == {
        "number": 1,
        "ref": "PRB-1",
    }
    smtp_server.fail_next(2)
    deferred = run("send", "--once", "--json", code=1)
    assert data(deferred) == {"sent": 0, "failed": 0, "deferred": 2}
    assert data(run("send", "--once", "--json")) == {"sent": 0, "failed": 0, "deferred": 0}
    retried = data(run("send", "--once", "--now", "--json"))  # the backoff is not waited for
    assert retried == {"sent": 2, "failed": 0, "deferred": 0}


def test_the_inspecting_commands_as_json(run):
    workflows = data(run("workflows", "--json"))
    assert workflows["resolved"]["statuses"][0]["commands"]["RESOLVE"] == "Resolved"
    assert "network" in workflows["resolved"]["services"]
    checked = data(run("templates", "check", "--json"))
    assert checked["ok"] is True and checked["problems"] == []
    what_if = data(
        run(
            "sla",
            "what-if",
            "--service",
            "network",
            "--priority",
            "P1",
            "--at",
            "2026-03-27T16:30Z",
            "--json",
        )
    )
    assert what_if["targets"][0]["target"] == "response"
    assert what_if["targets"][0]["goal_seconds"] == 30 * 60
    assert what_if["targets"][0]["due"] == "2026-03-27T17:00:00+00:00"
    run("init")
    run("ingest", "-", input=make_mail())
    explained = data(run("sla", "explain", "INC-1", "--json"))
    assert explained["incident"] == "INC-1" and explained["sla"]["ref"] == "INC-1"
    assert explained["explanation"][0].startswith("INC-1")
    response, resolution = explained["targets"]
    assert (response["target"], response["cycle"], response["standing"]) == (
        "response",
        1,
        "on track",
    )
    assert response["steps"][0]["text"].startswith("created in service")
    assert response["due"] and response["zone"]
    level = resolution["escalations"][0]
    assert (level["level"], level["fate"], level["sent_at"], level["recipients"]) == (
        1,
        "pending",
        None,
        [],
    )


def test_a_failing_command_keeps_its_exit_code_and_its_error_on_stderr(run):
    result = CliRunner().invoke(command(), ["incidents", "show", "INC-9", "--json"])
    assert result.exit_code in (3, 4)
    assert result.stdout == "" and "mailproc:" in result.stderr
