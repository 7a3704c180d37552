"""Start-up stays cheap: a command imports only what it needs.

Each command runs in a fresh interpreter, as an MTA pipe or a monitoring probe runs it, and the
test reads `sys.modules` at its exit. Lists of modules, not times, so that a noisy machine
cannot make it fail; bench/startup.py measures the times.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.mailfactory import make_mail

# Runs the real entry point, then writes the modules it loaded to the file named first.
PROBE = """
import sys
out = sys.argv.pop(1)
try:
    from mailproc.cli import main
    main(sys.argv[1:])
finally:
    with open(out, "w") as handle:
        handle.write("\\n".join(sorted(sys.modules)))
"""

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
    "asyncio",
    "imapclient",
    "schedule",
    "tqdm",
    "concurrent.futures",  # the parsing workers: a batch's, not one mail's
    "multiprocessing",
    "inscriptis",  # HTML to text: only for a mail without a text part
    "pydantic.plugin._loader",  # scans every installed distribution
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
    out = tmp_path / "modules.txt"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args],
        input=stdin,
        capture_output=True,
        env={
            "PATH": "/usr/bin:/bin",
            "MAILPROC_SECRET": "test",
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            **env,
        },
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return set(out.read_text().split())


def offenders(modules: set[str], denied: Iterable[str]) -> list[str]:
    return sorted(m for m in modules for d in denied if m == d or m.startswith(f"{d}."))


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


def test_a_second_ingest_imports_no_more_than_the_first(tmp_path, sqlite_setup):
    """Whatever the first process compiled and cached, the next one finds it."""
    first = loaded(tmp_path, ["ingest", "-"], make_mail(), **sqlite_setup)
    second = loaded(tmp_path, ["ingest", "-"], make_mail(), **sqlite_setup)
    assert second <= first
