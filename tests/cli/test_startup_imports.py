"""Start-up stays cheap: a command imports only what it needs.

Each command runs in a fresh interpreter, as an MTA pipe or a monitoring probe runs it, and the
test reads `sys.modules` at its exit. Lists of modules, not times, so that a noisy machine
cannot make it fail; bench/startup.py measures the times.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click
import pytest

from mailproc.cli import COMMANDS, cli, load
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.mailfactory import make_mail
from tests.support.probe import offenders, probe

# No database, template, mail, calendar, validation or migration library, no subcommand.
HELP_DENIED = (
    "sqlalchemy",
    "alembic",
    "pydantic",
    "jinja2",
    "holidays",
    "email.parser",
    "imapclient",
    "aiosmtplib",
    "inscriptis",
    "psycopg",
    "tqdm",
    "mailproc.config",
    "mailproc.store",
    "mailproc.desk",
    "mailproc.cli.ingest",
    "mailproc.cli.run",
)

# Storing one mail needs the parser, the database and the notification templates, not these.
INGEST_DENIED = (
    "alembic",  # migrations: `init` and `upgrade` only
    "mako",
    "aiosmtplib",  # sending: the daemon's or `notify send`'s job
    "smtplib",
    "imapclient",
    "schedule",
    "tqdm",
    "multiprocessing",  # the parsing workers: a batch's, not one mail's
    "inscriptis",  # HTML to text: only for a mail without a text part
    "email_validator",
    "mailproc.daemon",
    "mailproc.sources.imap",
    "mailproc.notify.sender",
    "mailproc.cli.run",
    "mailproc.cli.sla",
    "mailproc.cli.incidents",
    "mailproc.cli.setup",
)

CONFIG = """
support_address = "support@example.com"
default_service = "general"
[services.general]
calendar = "office"
[calendars.office]
zone = "Europe/Prague"
country = "CZ"
[calendars.office.hours]
mon = ["08:00-17:00"]
"""


def loaded(tmp_path: Path, args: Iterable[str], stdin: bytes = b"", **env: str) -> set[str]:
    done = probe(tmp_path, args, stdin, **env)
    assert done.code == 0, done.stderr
    return set(done.modules)


def test_help_imports_no_library_of_any_command(tmp_path):
    modules = loaded(tmp_path, ["--help"])
    assert "click" in modules
    assert offenders(modules, HELP_DENIED) == []


def test_version_imports_no_library_of_any_command(tmp_path):
    assert offenders(loaded(tmp_path, ["--version"]), HELP_DENIED) == []


@pytest.fixture
def sqlite_setup(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'mailproc.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    (tmp_path / "mailproc.toml").write_text(CONFIG)
    return {"MAILPROC_DATABASE_URL": url, "MAILPROC_CONFIG": str(tmp_path / "mailproc.toml")}


def test_ingest_of_one_mail_imports_only_what_storing_it_needs(tmp_path, sqlite_setup):
    mail = make_mail(to="support@example.com")
    modules = loaded(tmp_path, ["ingest", "-"], mail, **sqlite_setup)
    assert {"mailproc.desk.mail", "sqlalchemy.dialects.sqlite"} <= modules  # it did store it
    denied = (*INGEST_DENIED, "sqlalchemy.dialects.postgresql", "psycopg")
    assert offenders(modules, denied) == []


def test_ingest_loads_the_holidays_of_configured_countries_only(tmp_path, sqlite_setup):
    modules = loaded(tmp_path, ["ingest", "-"], make_mail(), **sqlite_setup)
    countries = sorted(m for m in modules if m.startswith("holidays.countries."))
    assert countries == ["holidays.countries.czechia"]


def test_a_second_ingest_reads_the_holidays_the_first_one_worked_out(tmp_path, sqlite_setup):
    """The `holidays` package costs more than storing a mail: a year's dates, once worked out,
    are kept in the cache folder, and the next process does not import the package."""
    first = loaded(tmp_path, ["ingest", "-"], make_mail(), **sqlite_setup)
    second = loaded(tmp_path, ["ingest", "-"], make_mail(), **sqlite_setup)
    assert "holidays.countries.czechia" in first
    assert offenders(second, ["holidays"]) == []


def test_a_second_ingest_validates_nothing_the_first_one_did(tmp_path, sqlite_setup):
    """The first process validated the configuration and cached the result; the next one
    loads it, so pydantic builds no validator and looks for no plugin."""
    first = loaded(tmp_path, ["ingest", "-"], make_mail(), **sqlite_setup)
    second = loaded(tmp_path, ["ingest", "-"], make_mail(), **sqlite_setup)
    assert "pydantic.plugin._loader" in first  # scans every installed distribution
    assert second <= first
    assert "pydantic.plugin._loader" not in second


def test_every_command_in_the_table_loads_and_its_help_line_is_its_own():
    for name, (_, short_help) in COMMANDS.items():
        command = load(name)
        assert command.name == name
        if not short_help:  # hidden: not listed
            assert command.hidden, name
            continue
        assert command.get_short_help_str(limit=500) == short_help, name


def test_the_tree_has_the_commands_of_the_table_only():
    assert cli.list_commands(click.Context(cli)) == sorted(COMMANDS)
    assert cli.get_command(click.Context(cli), "no-such-command") is None


# A quick read loads the store it reads and nothing of the daemon, sending or templates.
READ_DENIED = (
    "alembic",
    "aiosmtplib",
    "imapclient",
    "jinja2",
    "tqdm",
    "multiprocessing",
    "mailproc.daemon",
    "mailproc.desk.mail",
    "mailproc.notify.context",
)


@pytest.mark.parametrize("args", [["status"], ["incidents", "show", "INC-1"]], ids=" ".join)
def test_a_quick_read_imports_no_daemon_sending_or_templates(tmp_path, sqlite_setup, args):
    assert "created INC-1" in probe(tmp_path, ["ingest", "-"], make_mail(), **sqlite_setup).stdout
    done = probe(tmp_path, args, **sqlite_setup)
    assert done.code == 0, done.stderr
    assert "sqlalchemy" in done.modules  # it read the database
    assert offenders(done.modules, READ_DENIED) == []


def test_sla_what_if_computes_without_the_database(tmp_path, sqlite_setup):
    args = ["sla", "what-if", "--service", "general", "--priority", "P2"]
    done = probe(tmp_path, args, **sqlite_setup)
    assert done.code == 0, done.stderr
    assert "service general, priority P2" in done.stdout
    assert offenders(done.modules, (*READ_DENIED, "sqlalchemy", "mailproc.store")) == []
