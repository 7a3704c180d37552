"""Daemon tests: the real Dovecot and real databases; the daemon in a thread, or as a process.

``legacy_dovecot`` is a second Dovecot that advertises neither IDLE nor MOVE (so the polling
and COPY fallbacks run for real) and accepts XOAUTH2 tokens: JWTs it validates locally with a
shared HMAC key (see ``xoauth2_token``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from imapclient import IMAPClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings, settings_from_dict
from mailproc.daemon.loop import Daemon, SourceWorker
from mailproc.store import db
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.fixtures import started
from tests.support.servers import DovecotServer, ImapAccount

PASSWORD_ENV = "MAILPROC_TEST_IMAP_PASSWORD"
ENV = {PASSWORD_ENV: "support-pass", "MAILPROC_SECRET": "daemon tests"}
_JWT_KEY = b"mailproc-test-hmac-key-0123456789"


class LegacyDovecot(DovecotServer):
    """IMAP4rev1 with UIDPLUS but without IDLE and MOVE; XOAUTH2 besides passwords."""

    capabilities = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS"

    def _config(self) -> str:
        root = self._root
        keys = root / "oauth2-keys" / "default" / "HS256"
        keys.mkdir(parents=True, exist_ok=True)
        (keys / "default").write_text(base64.b64encode(_JWT_KEY).decode())
        (root / "oauth2.conf").write_text(
            "introspection_mode = local\n"
            f"local_validation_key_dict = fs:posix:prefix={root}/oauth2-keys/\n"
            "username_attribute = sub\n"
        )
        text = super()._config()
        text = text.replace(
            "auth_mechanisms = plain login", "auth_mechanisms = plain login xoauth2 oauthbearer"
        )
        oauth = (
            f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {root}/oauth2.conf\n}}\n"
        )
        text = text.replace("passdb {", oauth + "passdb {", 1)
        return text + f"imap_capability = {self.capabilities}\n"


class AncientDovecot(LegacyDovecot):
    """Plain IMAP4rev1: not even UIDPLUS, so no EXPUNGE of chosen UIDs."""

    capabilities = "IMAP4rev1 LITERAL+"


def xoauth2_token(user: str, lifetime: int = 3600) -> str:
    """A JWT (HS256) that LegacyDovecot accepts as an access token for `user`."""

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": user, "iat": now, "nbf": now, "exp": now + lifetime}).encode())
    signature = b64(hmac.new(_JWT_KEY, head + b"." + body, hashlib.sha256).digest())
    return (head + b"." + body + b"." + signature).decode()


@pytest.fixture(scope="session")
def legacy_dovecot() -> Iterator[LegacyDovecot]:
    server = LegacyDovecot({"support": "support-pass"}, tls=False)
    with started(server, "the legacy Dovecot"):
        yield server


@pytest.fixture
def legacy_mailbox(legacy_dovecot: LegacyDovecot) -> ImapAccount:
    account = legacy_dovecot.account("support")
    account.reset()
    return account


@pytest.fixture
def ancient_mailbox() -> Iterator[ImapAccount]:
    server = AncientDovecot({"support": "support-pass"}, tls=False)
    with started(server, "the ancient Dovecot"):
        yield server.account("support")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mailproc.sqlite3'}"


@pytest.fixture
def imap(imap_mailbox: ImapAccount) -> Iterator[IMAPClient]:
    """A client of the support account, for putting mail in (APPEND) and looking."""
    client = imap_mailbox.connect()
    yield client
    with_logout(client)


def with_logout(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        client.shutdown()


def ready_engine(url: str) -> Engine:
    engine = make_engine(url)
    upgrade(engine)
    return engine


def imap_source(account: ImapAccount, **overrides: Any) -> dict[str, Any]:
    return {
        "kind": "imap",
        "host": account.host,
        "port": account.port,
        "security": "plain",
        "username": account.username,
        "password_env": PASSWORD_ENV,
        **overrides,
    }


def make_settings(
    database_url: str,
    sources: dict[str, dict[str, Any]],
    smtp: dict[str, Any] | None = None,
    **daemon: Any,
) -> Settings:
    """The embedded defaults with these sources, a quick backoff and the signing secret."""
    from mailproc.config.settings import _embedded

    data = _embedded() | {
        "database_url": database_url,
        "sources": sources,
        "daemon": {"backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.3, **daemon},
    }
    if smtp is not None:
        data["smtp"] = smtp
    return settings_from_dict(data, "test configuration", ENV)


@contextmanager
def running(settings: Settings, environ: dict[str, str] = ENV, **kw: Any) -> Iterator[Daemon]:
    """The daemon on a thread of this process, stopped (and checked to stop) at the end."""
    daemon = Daemon(lambda: settings, environ, **kw)
    failure: list[BaseException] = []

    def main() -> None:
        try:
            daemon.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=main, name="daemon-under-test")
    thread.start()
    try:
        wait_until(lambda: daemon.runtime is not None or bool(failure), what="daemon start")
        yield daemon
    finally:
        daemon.stop()
        thread.join(30)
    assert not thread.is_alive(), "the daemon did not stop"
    assert not failure, failure


def worker(daemon: Daemon, index: int = 0) -> SourceWorker:
    assert daemon.runtime is not None
    return daemon.runtime.workers[index]


def wait_until(predicate: Callable[[], object], timeout: float = 15, what: str = "") -> None:
    """Poll a condition that a real server or thread makes true, with a deadline."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.02)


def count(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def messages(client: IMAPClient, folder: str = "INBOX") -> int:
    if not client.folder_exists(folder):
        return 0
    return int(client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"])


def polled_once(engine: Engine, source: str = "support") -> bool:
    """Whether the source has finished a pass (its first one, in a fresh database)."""
    with Session(engine) as session:
        row = session.get(db.SourceState, source)
        return row is not None and row.last_ok_at is not None


def toml_config(database_url: str, sources: dict[str, dict[str, Any]], **daemon: Any) -> str:
    """A configuration file's text: the demo's services and people, these sources."""
    lines = [
        'support_address = "support@example.com"',
        'default_service = "general"',
        f"database_url = {json.dumps(database_url)}",
        '[addresses]\n"mail-support@example.com" = "email"',
        '[services.general]\n[services.email]\ndefault_priority = "P2"',
        '[services.network]\nworkflow = "resolved"',
        '[people.tina]\nemail = "tina@example.com"\nservices = ["email", "general"]',
        '[security]\ntrusted_authserv_ids = ["mx.example.com"]',
        "[daemon]",
        *_toml_pairs({"backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.3, **daemon}),
    ]
    for name, source in sources.items():
        lines += [f"[sources.{name}]", *_toml_pairs(source)]
    return "\n".join(lines) + "\n"


def _toml_pairs(table: dict[str, Any]) -> list[str]:
    return [f"{key} = {json.dumps(value)}" for key, value in table.items() if value is not None]


class DaemonProcess:
    """`mailproc run` as a child process, its log in a file, for signals and SIGKILL."""

    def __init__(
        self,
        config: Path,
        log: Path,
        environ: dict[str, str] = ENV,
        program: tuple[str, ...] = ("-m", "mailproc"),
    ) -> None:
        self.config, self.log, self.environ, self.program = config, log, environ, program
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DaemonProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self.program, "--config", str(self.config), "run"],
                env={**self.environ, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        return self

    def send(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def text(self) -> str:
        return self.log.read_text("utf-8", "replace")


@pytest.fixture
def daemon_process(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Make a DaemonProcess from a configuration text; every one is killed at the end."""
    made: list[DaemonProcess] = []

    def make(config_text: str, program: tuple[str, ...] = ("-m", "mailproc")) -> DaemonProcess:
        config = tmp_path / "mailproc.toml"
        config.write_text(config_text)
        process = DaemonProcess(config, tmp_path / "daemon.log", program=program)
        made.append(process)
        return process

    yield make
    for process in made:
        process.kill()
