"""`mailproc config check` is the preflight: every missing piece at once, one line each, before
`run` meets them one restart at a time; with --connect, the real servers answer."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from mailproc.cli import command
from tests.support.clirunner import write_demo_config

BROKEN = """
[notifications]
templates = "no-such-templates"

[smtp]
host = "127.0.0.1"
username = "desk@example.com"
ca_file = "missing-ca.pem"

[sources.support]
kind = "imap"
host = "127.0.0.1"
username = "support"
password_env = "PREFLIGHT_IMAP_PASSWORD"

[sources.cloud]
kind = "imap"
host = "127.0.0.1"
username = "support@example.com"
auth = "xoauth2"
oauth2_token_command = ["no-such-token-helper", "--tenant", "x"]
"""


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("MAILPROC_SECRET", "MAILPROC_SMTP_PASSWORD", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("MAILPROC_DATABASE_URL", raising=False)
    return monkeypatch


def check(*args: str):
    return CliRunner().invoke(command(), [*args])


def test_every_missing_piece_is_reported_at_once_with_exit_three(env, tmp_path):
    config = write_demo_config(tmp_path)
    config.write_text(config.read_text() + BROKEN)
    result = check("--config", str(config), "config", "check")
    assert result.exit_code == 3, result.output
    failed = {line.split(":")[0] for line in result.output.splitlines() if line.startswith("FAIL")}
    assert failed == {
        "FAIL  signing secret",
        "FAIL  smtp password",
        "FAIL  sources.support password",
        "FAIL  smtp.ca_file",
        "FAIL  notifications.templates",
        "FAIL  sources.cloud.oauth2_token_command",
        "FAIL  templates",
    }
    out = result.output
    assert "set the environment variable MAILPROC_SECRET or the systemd credential" in out
    assert "set the environment variable PREFLIGHT_IMAP_PASSWORD" in out
    assert f"{tmp_path / 'missing-ca.pem'} does not exist" in out
    assert f"{tmp_path / 'no-such-templates'}: no such folder" in out
    assert "no-such-token-helper: no such program" in out
    assert out.splitlines()[-1] == "7 of 8 checks failed"


def test_the_json_report_has_one_entry_per_check(env, tmp_path):
    config = write_demo_config(tmp_path)
    env.setenv("MAILPROC_SECRET", "s")
    result = check("--config", str(config), "config", "check", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    assert [c["name"] for c in report["checks"]] == ["configuration", "signing secret", "templates"]
    assert all(set(c) == {"name", "healthy", "detail", "warning"} for c in report["checks"])


def test_a_template_error_fails_the_preflight_with_its_file_and_line(env, tmp_path):
    import shutil

    from mailproc.config.settings import demo_settings
    from mailproc.notify.templates import folder_of

    templates = tmp_path / "templates"
    shutil.copytree(folder_of(demo_settings(environ={})), templates)
    (templates / "comment" / "subject.txt").write_text("{{ incident.nope }}\n")
    config = write_demo_config(tmp_path)
    config.write_text(config.read_text() + '\n[notifications]\ntemplates = "templates"\n')
    env.setenv("MAILPROC_SECRET", "s")
    result = check("--config", str(config), "config", "check")
    assert result.exit_code == 3
    assert "FAIL  templates: 1 problem(s):" in result.output
    assert "comment/subject.txt:1" in result.output


def test_an_invalid_configuration_lists_every_fault(env, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('support_address = "nope"\ndefault_service = "ghost"\n[services.it]\n')
    result = check("--config", str(bad), "config", "check", "--json")
    assert result.exit_code == 3
    details = [c["detail"] for c in json.loads(result.output)["checks"]]
    assert any("support_address: 'nope' is not an e-mail address" in d for d in details)


def test_connect_reaches_the_database_the_mailbox_and_the_smtp_server(
    env, tmp_path, imap_mailbox, smtp_server, database_url
):
    config = write_demo_config(tmp_path)
    config.write_text(
        config.read_text()
        + f"""
[smtp]
host = "127.0.0.1"
port = {smtp_server.port}
security = "none"

[sources.support]
kind = "imap"
host = "127.0.0.1"
port = {imap_mailbox.port}
security = "plain"
username = "{imap_mailbox.username}"
password_env = "PREFLIGHT_IMAP_PASSWORD"
"""
    )
    env.setenv("MAILPROC_SECRET", "s")
    env.setenv("PREFLIGHT_IMAP_PASSWORD", imap_mailbox.password)
    env.setenv("MAILPROC_DATABASE_URL", database_url)
    before = check("--config", str(config), "config", "check", "--connect")
    assert before.exit_code == 1, before.output  # local checks pass; the database is empty
    assert "FAIL  database:" in before.output and "run `mailproc init`" in before.output
    assert check("--config", str(config), "init").exit_code == 0
    result = check("--config", str(config), "config", "check", "--connect")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "ok    database:" in out and "reachable, at revision" in out
    assert "ok    sources.support: imap://support@127.0.0.1" in out
    assert "INBOX found, 0 mail(s) waiting; will create Processed, Quarantine" in out
    assert f"ok    smtp: 127.0.0.1:{smtp_server.port}: answered EHLO, no TLS" in out
    assert imap_mailbox.folders() == ["INBOX"]  # the check created nothing
    assert smtp_server.messages == []  # and sent nothing

    env.setenv("PREFLIGHT_IMAP_PASSWORD", "wrong")
    refused = check("--config", str(config), "config", "check", "--connect")
    assert refused.exit_code == 1
    assert "FAIL  sources.support: connecting to 127.0.0.1" in refused.output


def test_connect_logs_in_to_smtp_as_the_sender_would(env, tmp_path):
    from tests.support.servers import SmtpCapture

    config = write_demo_config(tmp_path)
    env.setenv("MAILPROC_SECRET", "s")
    with SmtpCapture(username="desk@example.com", oauth2_token="tok") as server:
        helper = json.dumps([sys.executable, "-c", "print('tok')"])
        config.write_text(
            config.read_text()
            + f'\n[smtp]\nhost = "127.0.0.1"\nport = {server.port}\nsecurity = "none"\n'
            f'username = "desk@example.com"\nauth = "xoauth2"\noauth2_token_command = {helper}\n'
        )
        result = check("--config", str(config), "config", "check", "--connect")
    assert "logged in as desk@example.com (xoauth2)" in result.output
