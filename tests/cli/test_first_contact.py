"""The traps a new administrator fell into: no silent demo configuration, relative paths taken
from the configuration file's folder, errors that name the database, no notices queued with a
throw-away signing key, and `ingest` keeping the MTA's mail (exit 75) when it cannot store it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailproc.cli import command
from tests.support.clirunner import invoker, write_demo_config
from tests.support.fixtures import started
from tests.support.mailfactory import make_mail
from tests.support.servers import PostgresServer

SYSTEM_CONFIG = "etc/mailproc/mailproc.toml"  # stands for /etc/mailproc/mailproc.toml


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """A working directory with no configuration anywhere in reach and no secret (the system's
    place is moved into the test's folder: this machine's own /etc stays out of it)."""
    monkeypatch.chdir(tmp_path)
    for name in ("MAILPROC_CONFIG", "MAILPROC_SECRET", "MAILPROC_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    searched = (Path("config/mailproc.toml"), tmp_path / SYSTEM_CONFIG)
    monkeypatch.setattr("mailproc.config.lookup.SEARCHED", searched)
    return tmp_path


def invoke(*args: str, input: bytes | None = None):
    return CliRunner().invoke(command(), list(args), input=input)


def test_without_a_configuration_file_commands_say_where_they_looked_and_exit_three(bare):
    for args in (["incidents", "list"], ["ingest", "-"], ["status"], ["init"]):
        result = invoke(*args, input=make_mail())
        assert result.exit_code == (75 if args[0] == "ingest" else 3), result.output
        assert "no configuration file" in result.stderr
        assert str(bare / "config" / "mailproc.toml") in result.stderr
        assert str(bare / SYSTEM_CONFIG) in result.stderr
        assert "mailproc config example" in result.stderr
    assert not (bare / "var").exists()  # no database was created in passing


def test_only_the_demo_runs_on_the_embedded_configuration(bare):
    result = invoke("demo")
    assert result.exit_code == 0, result.output
    assert "embedded default configuration" in result.output


def test_a_relative_sqlite_path_is_taken_from_the_configuration_files_folder(bare, monkeypatch):
    etc = bare / "etc"
    etc.mkdir()
    config = etc / "mailproc.toml"
    text = write_demo_config(etc).read_text()
    config.write_text(text.replace("sqlite:///var/mailproc.db", "sqlite:///state/desk.db"))
    monkeypatch.setenv("MAILPROC_SECRET", "s")
    elsewhere = bare / "elsewhere"
    elsewhere.mkdir()
    run = invoker("--config", str(config))
    run("init")
    monkeypatch.chdir(elsewhere)
    run("ingest", "-", input=make_mail(subject="Printer on fire"))
    assert (etc / "state" / "desk.db").is_file()
    assert not (elsewhere / "state").exists()
    listed = json.loads(run("incidents", "list", "--json").output)
    assert [i["title"] for i in listed] == ["Printer on fire"]


def test_relative_paths_of_templates_and_secret_files_are_taken_from_there_too(bare):
    etc = bare / "etc"
    etc.mkdir()
    (etc / "secret").write_text("from a file\n")
    config = etc / "mailproc.toml"
    config.write_text(
        write_demo_config(etc).read_text()
        + '\n[notifications]\ntemplates = "my-templates"\nsecret_file = "secret"\n'
    )
    from mailproc.config.settings import load_settings

    settings = load_settings(config, environ={})
    assert settings.notifications.templates == etc / "my-templates"
    assert settings.signing_key == b"from a file"


def test_a_database_error_names_the_database_without_its_password(bare, monkeypatch):
    from tests.support.servers import free_port

    config = write_demo_config(bare)
    port = free_port()
    monkeypatch.setenv("MAILPROC_SECRET", "s")
    monkeypatch.setenv(
        "MAILPROC_DATABASE_URL", f"postgresql+psycopg://desk:hunter2@127.0.0.1:{port}/mailproc"
    )
    result = invoke("--config", str(config), "incidents", "list")
    assert result.exit_code == 1
    assert f"postgresql+psycopg://desk:***@127.0.0.1:{port}/mailproc" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [["ingest", "-"], ["escalate", "--once"], ["problems", "resolve", "PRB-1"]],
)
def test_commands_that_may_queue_a_notice_refuse_without_the_signing_secret(bare, args):
    config = write_demo_config(bare)
    invoker("--config", str(config))("init")
    result = invoke("--config", str(config), *args, input=make_mail())
    assert result.exit_code == (75 if args[0] == "ingest" else 3), result.output
    assert "no signing secret: set the environment variable MAILPROC_SECRET" in result.stderr
    assert "systemd credential MAILPROC_SECRET" in result.stderr
    listed = json.loads(invoke("--config", str(config), "incidents", "list", "--json").output)
    assert listed == []  # nothing stored, so nothing queued with a dead token


def test_the_signing_secret_may_come_from_a_systemd_credential(bare, monkeypatch):
    config = write_demo_config(bare)
    credentials = bare / "credentials"
    credentials.mkdir()
    (credentials / "MAILPROC_SECRET").write_text("from systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    run = invoker("--config", str(config))
    run("init")
    assert "created INC-1" in run("ingest", "-", input=make_mail()).output


def test_ingest_exits_75_while_postgresql_is_stopped_so_the_mta_keeps_the_mail(bare, monkeypatch):
    config = write_demo_config(bare)
    monkeypatch.setenv("MAILPROC_SECRET", "s")
    with started(PostgresServer(), "a PostgreSQL to stop") as server:
        url = server.create_database("desk")
        monkeypatch.setenv("MAILPROC_DATABASE_URL", url)
        run = invoker("--config", str(config))
        run("init")
        assert "created INC-1" in run("ingest", "-", input=make_mail()).output
    result = invoke("--config", str(config), "ingest", "-", input=make_mail(subject="later"))
    assert result.exit_code == 75, result.output
    assert f"127.0.0.1:{server.port}/desk" in result.stderr
    assert "mail not stored, try again later" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_exits_75_on_a_database_that_is_not_initialised(bare, monkeypatch):
    config = write_demo_config(bare)
    monkeypatch.setenv("MAILPROC_SECRET", "s")
    monkeypatch.setenv("MAILPROC_DATABASE_URL", f"sqlite:///{bare / 'empty.db'}")
    result = invoke("--config", str(config), "ingest", "-", input=make_mail())
    assert result.exit_code == 75
    assert f"SQLite file {bare / 'empty.db'}" in result.stderr
    assert "run `mailproc init`" in result.stderr


def test_ingest_exits_zero_for_stored_quarantined_and_automatic_mail(bare, monkeypatch):
    config = write_demo_config(bare)
    monkeypatch.setenv("MAILPROC_SECRET", "s")
    run = invoker("--config", str(config))
    run("init")
    run("ingest", "-", input=make_mail())
    run("ingest", "-", input=b"\x00\xff not a mail at all" * 3)
    bounce = make_mail(sender="MAILER-DAEMON@example.org", subject="Undelivered Mail")
    run("ingest", "-", input=bounce)


def test_log_level_is_a_choice_and_may_come_from_the_environment(bare, monkeypatch):
    result = invoke("--log-level", "FOO", "workflows")
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "'FOO' is not one of" in result.stderr
    monkeypatch.setenv("MAILPROC_LOG_LEVEL", "LOUD")
    assert invoke("workflows").exit_code == 2
    monkeypatch.setenv("MAILPROC_LOG_LEVEL", "debug")
    monkeypatch.setenv("MAILPROC_LOG_FORMAT", "json")
    config = write_demo_config(bare)
    assert invoke("--config", str(config), "workflows").exit_code == 0
