"""Test set-up: the fixtures of tests/support/ for every test, and markers by server.

The fixtures start real servers on 127.0.0.1 (tests/support/fixtures.py), give a Desk on a fresh
database (tests/support/desk.py) and run the daemon against Dovecot (tests/support/daemon.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.clirunner import cli  # noqa: E402,F401
from tests.support.daemon import (  # noqa: E402,F401
    ancient_mailbox,
    daemon_process,
    imap,
    legacy_dovecot,
    legacy_mailbox,
    sqlite_url,
)
from tests.support.desk import clock, desk, engine, settings  # noqa: E402,F401
from tests.support.fixtures import (  # noqa: E402,F401
    database_url,
    dovecot,
    imap_mailbox,
    pg_url,
    postfix,
    postgres_server,
    smtp_server,
)

_MARKERS = {"postgres_server": "postgres", "dovecot": "dovecot", "postfix": "postfix"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use, so `-m "not dovecot"` etc. select them."""
    for item in items:
        for fixture, marker in _MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session", autouse=True)
def _cache_of_this_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What processes keep for the next (mailproc.runtime.cache) goes to a folder of this
    run, for the commands the tests start too, never to the user's own cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAILPROC_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield
