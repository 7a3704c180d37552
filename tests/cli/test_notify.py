"""The notification commands: send --once, templates check and preview, and what show prints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mailproc.config.settings import demo_settings
from mailproc.notify.templates import folder_of
from mailproc.vocabulary import NoticeKind
from tests.support.clirunner import invoker
from tests.support.mailfactory import make_mail

CONFIG = """
support_address = "support@example.com"
default_service = "general"
[services.general]
title = "General IT"
first_line = "desk@example.com"
[people.tina]
email = "tina@example.com"
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
[notifications]
templates = "{templates}"
"""


@pytest.fixture
def templates(tmp_path) -> Path:
    folder = tmp_path / "templates"
    shutil.copytree(folder_of(demo_settings(environ={})), folder)
    return folder


@pytest.fixture
def run(tmp_path, monkeypatch, database_url, smtp_server, templates):
    config = tmp_path / "mailproc.toml"
    config.write_text(CONFIG.format(port=smtp_server.port, templates=templates))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MAILPROC_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILPROC_SECRET", "cli tests")
    invoke = invoker("--config", str(config))
    invoke("init")
    return invoke


def test_send_once_flushes_the_outbox(run, smtp_server):
    run("ingest", "-", input=make_mail(to="support@example.com"))
    assert run("send", "--once").stdout == "sent 2, failed 0, deferred 0\n"
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == [
        "alice@example.org",
        "desk@example.com",
    ]
    shown = run("incidents", "show", "INC-1").output
    assert "acknowledgment → alice@example.org: sent" in shown
    assert run("send", "--once").stdout == "sent 0, failed 0, deferred 0\n"


def test_send_reports_deferred_mail_with_exit_one(run, smtp_server):
    run("ingest", "-", input=make_mail(to="support@example.com"))
    smtp_server.stop()
    result = run("send", "--once", code=1)
    assert "deferred 2" in result.stdout and "2 mail(s) deferred" in result.stderr
    shown = run("incidents", "show", "INC-1").output
    assert "pending, 1 attempt(s), last: SMTP server 127.0.0.1 unavailable" in shown


def test_send_without_once_is_a_usage_error(run):
    assert "use --once" in run("send", code=2).output


def test_templates_check_passes_on_the_shipped_templates(run):
    assert f"{len(NoticeKind)} notices for 1 services render" in run("templates", "check").output


def test_templates_check_reports_each_error_with_file_and_line(run, templates):
    (templates / "closed" / "body.txt").write_text("Hi\n\n{{ incident.titel }}\n")
    (templates / "comment" / "subject.txt").write_text("{{ ''.__class__.__mro__ }}")
    result = run("templates", "check", code=3)
    assert (
        f"{templates / 'closed' / 'body.txt'}:3: UndefinedError: 'dict object' has no attribute "
        "'titel'" in result.stderr
    )
    assert f"{templates / 'comment' / 'subject.txt'}:1: SecurityError" in result.stderr
    assert "2 template problem(s)" in result.stderr


def test_templates_preview_with_samples_and_with_a_real_incident(run):
    sample = run("templates", "preview", "acknowledgment").output
    assert sample.startswith("Subject: [INC-42] We received your report: Cannot send mail\n")
    assert "To: Alice Novák <alice@example.org> (reporter)" in sample
    assert "--- text/html ---" in sample and "<strong>INC-42</strong>" in sample
    run("ingest", "-", input=make_mail(subject="Printer on fire", to="support@example.com"))
    real = run("templates", "preview", "closed", "--incident", "INC-1").output
    assert real.startswith("Subject: [INC-1] Closed: Printer on fire\n")
    solver = run("templates", "preview", "assigned", "--role", "assignee").output
    assert "What to do now" in solver
    run("templates", "preview", "closed", "--incident", "INC-9", code=4)
    run("templates", "preview", "nonsense", code=2)
