"""Configuration: validated at start, errors name the file, the key and the fault."""

from pathlib import Path

import pytest

from mailproc.config.lookup import resolve_path
from mailproc.config.settings import (
    EMBEDDED,
    ConfigError,
    demo_settings,
    load_settings,
)

EXAMPLE = Path(__file__).parents[2] / "config" / "mailproc.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailproc.toml"
    path.write_text(text)
    return path


MINIMAL = """
support_address = "support@example.com"
default_service = "it"
[services.it]
title = "IT"
"""


def test_embedded_defaults_load_without_any_file(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = demo_settings(environ={})
    assert settings.source == EMBEDDED
    assert {"default", "resolved"} <= set(settings.workflows)


def test_the_shipped_example_is_valid():
    settings = load_settings(EXAMPLE, environ={})
    assert settings.source == str(EXAMPLE)
    assert settings.people


def test_path_resolution_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    system = tmp_path / "etc" / "mailproc.toml"  # stands for /etc/mailproc/mailproc.toml
    monkeypatch.setattr("mailproc.config.lookup.SEARCHED", (Path("config/mailproc.toml"), system))
    given = tmp_path / "given.toml"
    assert resolve_path(given, {"MAILPROC_CONFIG": "env.toml"}) == given
    assert resolve_path(None, {"MAILPROC_CONFIG": "env.toml"}) == Path("env.toml")
    assert resolve_path(None, {}) is None
    system.parent.mkdir()
    system.write_text(MINIMAL)
    assert resolve_path(None, {}) == system
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mailproc.toml").write_text(MINIMAL)
    assert resolve_path(None, {}) == Path("config/mailproc.toml")


def test_database_url_from_the_environment_wins(tmp_path, monkeypatch):
    path = write(tmp_path, MINIMAL)
    monkeypatch.chdir(tmp_path)
    settings = load_settings(path, {"MAILPROC_DATABASE_URL": "sqlite:////srv/x.db"})
    assert settings.database_url == "sqlite:////srv/x.db"
    # a relative file in the variable is the process's: made absolute at once
    settings = load_settings(path, {"MAILPROC_DATABASE_URL": "sqlite:///x.db"})
    assert settings.database_url == f"sqlite:///{tmp_path / 'x.db'}"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[services.db]\nworkflow = "nope"', "services.db.workflow: unknown workflow 'nope'"),
        ('[people.tina]\nemail = "not-an-address"', "people.tina.email: 'not-an-address'"),
        ('[people.tina]\nemail = "t@x.org"\nrole = "boss"', "people.tina.role: Input should be"),
        ('[services.db]\ndefault_priority = "P7"', "services.db.default_priority"),
        ('[addresses]\n"db@x.org" = "ghost"', "unknown service 'ghost'"),
        ("colour = 'blue'", "colour: Extra inputs are not permitted"),
        ('[aliases]\nCLOSE = "REOPEN"', "aliases.CLOSE: is already a command word"),
    ],
)
def test_errors_name_file_key_and_fault(tmp_path, extra, message):
    path = write(tmp_path, MINIMAL + "\n" + extra + "\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_a_file_that_is_not_utf8_is_reported_with_the_file_and_the_byte(tmp_path):
    path = tmp_path / "mailproc.toml"
    path.write_bytes(b'support_address = "support@example.com"\n# Caf\xe9\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == (
        f"{path}: not UTF-8: byte 46 (0xe9, line 2) cannot be read; save the file as UTF-8"
    )


def test_broken_toml_is_reported_with_the_file(tmp_path):
    path = write(tmp_path, "support_address = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, environ={})


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_a_workflow_naming_an_unknown_status_is_refused(tmp_path):
    path = write(
        tmp_path,
        MINIMAL
        + """
[workflows.custom]
initial = "Open"
reopen_to = "Open"
statuses = [{ name = "Open" }]
transitions = { CLOSE = { Open = "Done" } }
""",
    )
    with pytest.raises(ConfigError, match=r"workflows\.custom: unknown status 'Done'"):
        load_settings(path, environ={})


def test_service_for_recipient_ignores_plus_tags_and_case(tmp_path):
    settings = demo_settings(environ={})
    assert settings.service_for(["Mail-Support+INC-4.abc@example.com".lower()]) == "email"
    assert settings.service_for(["someone@else.org"]) == settings.default_service
