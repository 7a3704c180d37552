"""`mailproc people show`, `templates preview --language/--zone`, `templates check` per
language, and `demo --language de`: the locale from the shell."""

from __future__ import annotations

import pytest

from tests.support.clirunner import invoker

CONFIG = """
support_address = "support@example.com"
default_service = "desk"
[locale]
language = "en"
zone = "Europe/Prague"
[services.desk]
title = { en = "Service desk", de = "Servicedesk" }
zone = "Europe/Vienna"
[people.sam]
email = "sam@example.com"
zone = "America/Sao_Paulo"
[directory."alice@example.org"]
name = "Alice Novák"
language = "de"
"""


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILPROC_CONFIG", raising=False)
    (tmp_path / "mailproc.toml").write_text(CONFIG, encoding="utf-8")
    return invoker("--config", "mailproc.toml")


def test_people_show_prints_each_value_with_its_source(run):
    assert run("people", "show", "Alice@Example.org").output.splitlines() == [
        "alice@example.org",
        "  role      no role (reporter or other correspondent)",
        '  name      Alice Novák          from directory."alice@example.org"',
        '  language  de                   from directory."alice@example.org"',
        "  zone      Europe/Vienna        from service desk",
        "  (for notices about service desk)",
    ]
    sam = run("people", "show", "sam@example.com").output
    assert "role      solver (people.sam)" in sam
    assert "zone      America/Sao_Paulo    from people.sam" in sam
    assert "language  en                   from locale" in sam
    assert (
        "unknown service 'nope'"
        in run("people", "show", "x@y.z", "--service", "nope", code=2).stderr
    )


def test_preview_as_a_reader_of_another_language_and_zone(run):
    out = run("templates", "preview", "resolved", "--language", "de", "--zone", "Asia/Tokyo").output
    assert "Subject: [INC-42] Gelöst: Cannot send mail" in out
    assert "Language: de, time zone: Asia/Tokyo" in out
    assert "seit 23.11.2026, 18:30 +0900 gelöst ist" in out
    assert (
        "no-such/zone"
        in run("templates", "preview", "closed", "--zone", "no-such/zone", code=2).stderr
    )


def test_check_reports_the_languages_and_what_each_lacks(run, tmp_path):
    out = run("templates", "check").output
    assert "render in the default, de" in out
    assert "de: every kind translated" in out


def test_demo_in_german(run):
    out = run("demo", "--language", "de").output
    assert "notifies alice@example.org: [INC-1] Ihre Meldung ist eingegangen: Exchange" in out
    assert "notifies alice@example.org: [INC-1] Geschlossen: Exchange" in out
    assert "wir haben Ihre Meldung am 23.11.2026, 10:06 MEZ erhalten" in out
    assert "Sie liegt jetzt bei E-Mail (Exchange), Priorität P2." in out
