"""The server fixtures: real PostgreSQL, Dovecot and SMTP servers on 127.0.0.1.

The servers themselves are in tests/support/servers.py.

Session scope: ``postgres_server`` (one PostgreSQL cluster), ``dovecot`` (one Dovecot) and
``postfix`` (one Postfix delivering into the Dovecot's Maildirs; ``postfix_server`` makes more).
Function scope: ``pg_url`` (a fresh database), ``database_url`` (SQLite and PostgreSQL),
``imap_mailbox`` (the ``support`` account, emptied), ``smtp_server`` (an SMTP capture).

A server that cannot start makes the tests that need it FAIL, never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from tests.support.servers import (
    DovecotServer,
    ImapAccount,
    PostfixServer,
    PostgresServer,
    ServerError,
    SmtpCapture,
    _Managed,
)

S = TypeVar("S", bound=_Managed)


@contextmanager
def started(server: S, what: str) -> Iterator[S]:
    """The server, started and closed afterwards; one that cannot start fails the test with
    the server's own words instead of a traceback."""
    try:
        server.start()
    except (ServerError, OSError) as exc:
        server.close()
        pytest.fail(f"{what} could not start:\n{exc}", pytrace=False)
    try:
        yield server
    finally:
        server.close()


#: The IMAP accounts of the session's Dovecot: user name -> password.
IMAP_USERS: dict[str, str] = {
    "support": "support-pass",
    "reporter": "reporter-pass",
    "tina": "tina-pass",
}
SUPPORT_USER = "support"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster for the whole run (fsync off; superuser postgres, trust auth)."""
    with started(PostgresServer(), "the PostgreSQL test server") as server:
        yield server


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL (postgresql+psycopg://) of a new, empty database, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once as a SQLite file and once as a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mailproc.sqlite3'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """One Dovecot for the whole run, with the users of IMAP_USERS (folder separator ".")."""
    with started(DovecotServer(IMAP_USERS), "the Dovecot test server") as server:
        yield server


@pytest.fixture
def imap_mailbox(dovecot: DovecotServer) -> ImapAccount:
    """The ``support`` account, emptied: no messages, no folder but INBOX.

    If an earlier test stopped the session's Dovecot, it is started again first.
    """
    if not dovecot.running:
        dovecot.start()
    account = dovecot.account(SUPPORT_USER)
    account.reset()
    return account


@pytest.fixture
def smtp_server() -> Iterator[SmtpCapture]:
    """A started SMTP capture on 127.0.0.1 (no AUTH; refuses nothing until told to)."""
    with SmtpCapture() as server:
        yield server


#: The addresses the test Postfix delivers, each into a Dovecot user's Maildir.
POSTFIX_MAILBOXES = {
    "support@example.com": "support/Maildir/",
    "reporter@example.org": "reporter/Maildir/",
    "tina@example.com": "tina/Maildir/",
}


def postfix_server(dovecot: DovecotServer, recipient_delimiter: str = "") -> PostfixServer:
    """A Postfix (not started) that delivers POSTFIX_MAILBOXES into the Dovecot's Maildirs."""
    if not dovecot.running:
        dovecot.start()
    return PostfixServer(
        dovecot.home(SUPPORT_USER).parent,
        POSTFIX_MAILBOXES,
        uid=dovecot._uid,
        gid=dovecot._gid,
        recipient_delimiter=recipient_delimiter,
    )


@pytest.fixture(scope="session")
def postfix(dovecot: DovecotServer) -> Iterator[PostfixServer]:
    """One Postfix for the whole run, as Postfix ships (no recipient delimiter)."""
    with started(postfix_server(dovecot), "the Postfix test server") as server:
        yield server
