"""Real servers for mailproc's tests and benchmarks, started on 127.0.0.1.

Plain Python (no pytest): ``tests/support/fixtures.py`` builds its fixtures on it, and scripts under
``bench/`` can use it directly::

    from tests.support.servers import DovecotServer, PostgresServer, SmtpCapture

    with PostgresServer(durable=True) as pg, DovecotServer({"support": "pw"}) as imap:
        url = pg.create_database("bench")
        ...

* :class:`PostgresServer` - a throw-away PostgreSQL cluster (``initdb`` + ``pg_ctl``) run as
  the ``postgres`` system user when we are root.
* :class:`DovecotServer` - a Dovecot IMAP server with its own configuration (nothing from
  ``/etc/dovecot``), passwd-file users and Maildirs, a plain IMAP listener and an implicit-TLS
  (IMAPS) listener whose certificate is signed by a throw-away CA (:attr:`DovecotServer.ca_file`).
* :class:`SmtpCapture` - an in-process aiosmtpd server that records every message it accepts
  and can refuse recipients or fail temporarily on demand.

Every server lives in a fresh directory under /tmp and on a free port, so leftovers of a crashed
earlier run never get in the way.  Besides ``stop()``/``close()``, context managers and an
``atexit`` hook, each external server has a small watchdog process that stops it and removes its
directory if the process that started it dies without cleaning up (SIGKILL, ``os._exit``).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import email
import email.message
import email.policy
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from imapclient import IMAPClient

LOCALHOST = "127.0.0.1"
DOVECOT_BINARY = "/usr/sbin/dovecot"
DOVEADM_BINARY = "/usr/bin/doveadm"
DOVECOT_MAIL_USER = "mailproc-test"
POSTGRES_GLOB = "/usr/lib/postgresql/*/bin"


class ServerError(RuntimeError):
    """A test server could not be started or driven; the message includes its log tail."""


# --------------------------------------------------------------------------------------------
# helpers


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_bindable(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def log_tail(path: Path | str, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file ("" if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _is_root() -> bool:
    return os.geteuid() == 0


def _scratch_dir(prefix: str) -> Path:
    """A fresh directory that unprivileged service users can reach (never under /root)."""
    base = tempfile.gettempdir()
    if not _world_searchable(base):
        base = "/tmp"
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    path.chmod(0o755)
    return path


def _world_searchable(directory: str) -> bool:
    path = Path(directory).resolve()
    for part in [path, *path.parents]:
        try:
            if not part.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _live_group_members(pgid: int) -> list[int]:
    """PIDs of the processes of group ``pgid`` that are not zombies (Linux /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            os.chown(os.path.join(dirpath, name), uid, gid)


def _run(
    argv: Sequence[str],
    *,
    what: str,
    log: Path | None = None,
    timeout: float = 120,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure raise ServerError with its output (and a log tail)."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServerError(f"{what}: {' '.join(argv)}: {exc}") from exc
    if proc.returncode != 0:
        message = f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n"
        message += (proc.stdout + proc.stderr).strip()
        if log is not None:
            message += f"\n--- last lines of {log} ---\n{log_tail(log)}"
        raise ServerError(message)
    return proc


# The watchdog: waits for EOF on stdin.  "done" means the owner cleaned up itself; a bare EOF
# means the owner died, so it signals the server through its pid file and removes its files.
_WATCHDOG = r"""
import json, os, shutil, signal, sys, time
spec = json.loads(sys.argv[1])
try:
    said = sys.stdin.read()
except BaseException:
    said = ""
if said.strip() == "done":
    sys.exit(0)

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"
    except OSError:
        return False

def send(pid, signum):
    try:
        if spec["group"]:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except OSError:
        pass

pids = []
for pidfile, signum in spec["pidfiles"]:
    try:
        with open(pidfile) as fh:
            pid = int(fh.read().split()[0])
    except Exception:
        continue
    send(pid, signum)
    pids.append(pid)
deadline = time.monotonic() + 15
for pid in pids:
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        send(pid, signal.SIGKILL)
time.sleep(0.2)
for path in spec["remove"]:
    shutil.rmtree(path, ignore_errors=True)
"""


class _Watchdog:
    def __init__(self, *, pidfiles: Sequence[tuple[Path, int]], remove: Path, group: bool) -> None:
        spec = {
            "pidfiles": [(str(p), int(s)) for p, s in pidfiles],
            "remove": [str(remove)],
            "group": group,
        }
        self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def dismiss(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(b"done\n")
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Managed:
    """Context-manager and atexit plumbing shared by the servers."""

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _register_atexit(self) -> None:
        atexit.register(self._atexit)

    def _atexit(self) -> None:
        try:
            self.close()
        except Exception as exc:
            print(f"tests.support.servers: cleanup of {self!r} failed: {exc}", file=sys.stderr)


class _Rooted(_Managed):
    """A server that lives in a directory of its own, made when it starts."""

    root: Path | None = None

    @property
    def _root(self) -> Path:
        if self.root is None:
            raise ServerError(f"{type(self).__name__} has not been started")
        return self.root


# --------------------------------------------------------------------------------------------
# PostgreSQL


def find_postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``."""
    candidates = [Path(p) for p in glob.glob(POSTGRES_GLOB) if Path(p, "initdb").exists()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in path.parent.name.split(".") if x.isdigit())

    if not candidates:
        raise ServerError(
            f"no PostgreSQL server binaries ({POSTGRES_GLOB}/initdb): install the Debian package "
            "'postgresql' (scripts/test does)"
        )
    return max(candidates, key=version)


class PostgresServer(_Rooted):
    """A private PostgreSQL cluster on 127.0.0.1, trust authentication, superuser ``postgres``.

    ``durable=False`` (the default, for tests) turns off fsync, synchronous_commit and
    full_page_writes; ``durable=True`` keeps PostgreSQL's defaults, for benchmarks.
    ``stop()`` (= ``close()``) stops the server and removes its directory.
    """

    host = LOCALHOST
    superuser = "postgres"

    def __init__(
        self,
        *,
        durable: bool = False,
        port: int | None = None,
        max_connections: int = 200,
        settings: Mapping[str, str | int] | None = None,
        bin_dir: Path | str | None = None,
        os_user: str = "postgres",
        start_timeout: float = 60,
    ) -> None:
        self.durable = durable
        self.port = port or free_port()
        self.max_connections = max_connections
        self.settings = dict(settings or {})
        self.bin_dir = Path(bin_dir) if bin_dir else None
        self.os_user = os_user
        self.start_timeout = start_timeout
        self.root: Path | None = None
        self._watchdog: _Watchdog | None = None
        self._running = False

    def __repr__(self) -> str:
        return f"PostgresServer(port={self.port}, root={self.root})"

    # paths
    @property
    def data_dir(self) -> Path:
        return self._root / "data"

    @property
    def socket_dir(self) -> Path:
        return self._root / "sock"

    @property
    def log_path(self) -> Path:
        return self._root / "postgres.log"

    @property
    def running(self) -> bool:
        return self._running

    def _as_user(self, argv: Sequence[str]) -> list[str]:
        if _is_root():
            return ["runuser", "-u", self.os_user, "--", *argv]
        return list(argv)

    def _config_lines(self) -> list[str]:
        settings: dict[str, str | int] = {
            "listen_addresses": f"'{self.host}'",
            "port": self.port,
            "unix_socket_directories": f"'{self.socket_dir}'",
            "max_connections": self.max_connections,
        }
        if not self.durable:
            settings.update(fsync="off", synchronous_commit="off", full_page_writes="off")
        settings.update(self.settings)
        return [f"{key} = {value}" for key, value in settings.items()]

    def start(self) -> Self:
        if self._running:
            return self
        bin_dir = self.bin_dir or find_postgres_bin_dir()
        self.bin_dir = bin_dir
        if self.root is None:
            self.root = _scratch_dir("mailproc-pg-")
            self._register_atexit()
            try:
                self._init_cluster(bin_dir)
            except BaseException:
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = None
                raise
        if self._watchdog is None:
            self._watchdog = _Watchdog(
                pidfiles=[(self.data_dir / "postmaster.pid", signal.SIGQUIT)],
                remove=self._root,
                group=False,
            )
        try:
            _run(
                self._as_user(
                    [
                        str(bin_dir / "pg_ctl"),
                        "start",
                        "-w",
                        "-t",
                        str(int(self.start_timeout)),
                        "-D",
                        str(self.data_dir),
                        "-l",
                        str(self.log_path),
                    ]
                ),
                what=f"starting PostgreSQL on {self.host}:{self.port}",
                log=self.log_path,
                cwd=self._root,
                timeout=self.start_timeout + 15,
            )
        except ServerError:
            self.close()
            raise
        self._running = True
        return self

    def _init_cluster(self, bin_dir: Path) -> None:
        root = self._root
        self.socket_dir.mkdir()
        if _is_root():
            pw = ensure_system_user(self.os_user)
            _chown_tree(root, pw.pw_uid, pw.pw_gid)
        _run(
            self._as_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "-U",
                    self.superuser,
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            ),
            what="initdb",
            cwd=root,
        )
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as fh:
            fh.write("\n# mailproc tests\n" + "\n".join(self._config_lines()) + "\n")

    def stop(self) -> None:
        """Stop the server and remove its directory (same as :meth:`close`)."""
        self.close()

    def close(self) -> None:
        root = self.root
        if root is None:
            return
        if self._running or (root / "data" / "postmaster.pid").exists():
            try:
                _run(
                    self._as_user(
                        [
                            str((self.bin_dir or find_postgres_bin_dir()) / "pg_ctl"),
                            *("stop", "-w", "-m", "fast", "-t", "30", "-D", str(self.data_dir)),
                        ]
                    ),
                    what="stopping PostgreSQL",
                    log=self.log_path,
                    cwd=root,
                    timeout=45,
                )
            except ServerError:
                self._signal_postmaster(signal.SIGQUIT)
        self._running = False
        shutil.rmtree(root, ignore_errors=True)
        self.root = None
        if self._watchdog is not None:
            self._watchdog.dismiss()
            self._watchdog = None
        atexit.unregister(self._atexit)

    def _signal_postmaster(self, signum: int) -> None:
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signum)
        except (OSError, ValueError, IndexError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)

    # client side
    def url(self, dbname: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://{self.superuser}@{self.host}:{self.port}/{dbname}"

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq/psycopg connection string of a database on this server."""
        return f"host={self.host} port={self.port} user={self.superuser} dbname={dbname}"

    def execute(
        self, sql: str, params: Sequence[Any] | None = None, dbname: str = "postgres"
    ) -> Any:
        """Run one statement in autocommit mode; return all rows if it produced any."""
        import psycopg

        with psycopg.connect(self.conninfo(dbname), autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description is not None else None

    def create_database(self, name: str) -> str:
        """Create an empty database; return its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, first ending every connection to it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force)
            )


# --------------------------------------------------------------------------------------------
# Dovecot


def ensure_system_user(name: str) -> pwd.struct_passwd:
    """Return the system user ``name``, creating it (no home, no login) if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if not _is_root():
        raise ServerError(f"system user {name!r} is missing and only root can create it")
    proc = subprocess.run(
        [
            "useradd",
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ServerError(f"could not create system user {name!r}: {proc.stderr.strip()}") from None


@dataclass(frozen=True)
class ImapAccount:
    """One mailbox on a :class:`DovecotServer`, with what a client needs to log in."""

    server: DovecotServer
    username: str
    password: str

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def tls_port(self) -> int | None:
        return self.server.tls_port

    def connect(self, *, tls: bool = False, timeout: float = 10) -> IMAPClient:
        """A logged-in IMAPClient (plain IMAP, or IMAPS verified against the test CA)."""
        return self.server.connect(self.username, self.password, tls=tls, timeout=timeout)

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        self.server.deliver(self.username, raw, folder)

    def message_count(self, folder: str = "INBOX") -> int:
        return self.server.message_count(self.username, folder)

    def folders(self) -> list[str]:
        return self.server.folders(self.username)

    def reset(self) -> None:
        self.server.reset_user(self.username)


class DovecotServer(_Rooted):
    """A private Dovecot IMAP server on 127.0.0.1 (needs root, and Dovecot installed).

    Users live in a passwd-file with ``{PLAIN}`` passwords; all of them map to the system user
    ``mailproc-test``; mail is in ``<root>/home/<user>/Maildir``; the folder separator is ``.``.
    Logs go to :attr:`log_path` (``<root>/dovecot.log``).

    ``stop()``/``kill()`` stop the server but keep the configuration and the mail, so
    ``start()``/``restart()`` bring it back on the same ports with the same mailboxes;
    ``close()`` stops it and removes everything.
    """

    host = LOCALHOST

    def __init__(
        self,
        users: Mapping[str, str] | None = None,
        *,
        port: int | None = None,
        tls: bool = True,
        tls_port: int | None = None,
        mail_user: str = DOVECOT_MAIL_USER,
        binary: str = DOVECOT_BINARY,
        max_userip_connections: int = 100,
        start_timeout: float = 30,
    ) -> None:
        self.port = port or free_port()
        self.tls = tls
        self.tls_port: int | None = (tls_port or free_port()) if tls else None
        self.mail_user = mail_user
        self.binary = binary
        self.max_userip_connections = max_userip_connections
        self.start_timeout = start_timeout
        self.root: Path | None = None
        self._users: dict[str, str] = {}
        for name, password in (users or {}).items():
            self._check_user(name, password)
            self._users[name] = password
        self._proc: subprocess.Popen[bytes] | None = None
        self._watchdog: _Watchdog | None = None
        self._uid = -1
        self._gid = -1
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DovecotServer(port={self.port}, root={self.root})"

    # paths
    @property
    def config_path(self) -> Path:
        return self._root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        """Dovecot's own log (log_path and info_log_path)."""
        return self._root / "dovecot.log"

    @property
    def stderr_path(self) -> Path:
        """stdout/stderr of the master process (startup errors land here)."""
        return self._root / "dovecot.stderr"

    @property
    def users_path(self) -> Path:
        """Directory of the passwd-files, one per user."""
        return self._root / "users"

    @property
    def ca_file(self) -> Path | None:
        """PEM file of the CA that signed the IMAPS certificate (None without TLS)."""
        return self._root / "tls" / "ca.pem" if self.tls else None

    def home(self, user: str) -> Path:
        return self._root / "home" / user

    def maildir(self, user: str) -> Path:
        return self.home(user) / "Maildir"

    @property
    def users(self) -> dict[str, str]:
        return dict(self._users)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    # setup
    @staticmethod
    def _check_user(name: str, password: str) -> None:
        bad = set(":\n\r\0/") | {" "}
        if not name or bad & set(name) or name.startswith("."):
            raise ValueError(f"unusable IMAP user name for the test server: {name!r}")
        if set(":\n\r\0") & set(password):
            raise ValueError("passwords may not contain ':' or line breaks")

    def _prepare(self) -> None:
        if not os.path.exists(self.binary):
            raise ServerError(
                f"Dovecot is not installed ({self.binary} missing): install the Debian package "
                "'dovecot-imapd' (scripts/test does)"
            )
        if not _is_root():
            raise ServerError("the Dovecot test server must be started as root")
        pw = ensure_system_user(self.mail_user)
        self._uid, self._gid = pw.pw_uid, pw.pw_gid
        self.root = _scratch_dir("mailproc-dovecot-")
        self._register_atexit()
        (self._root / "home").mkdir(mode=0o755)
        if self.tls:
            self._make_certificates(self._root / "tls")
        self.users_path.mkdir(mode=0o755)
        for name in self._users:
            self._write_user(name)
        self.config_path.write_text(self._config(), encoding="utf-8")

    def _make_certificates(self, directory: Path) -> None:
        directory.mkdir(mode=0o755)
        cnf = directory / "openssl.cnf"
        cnf.write_text(
            "[req]\ndistinguished_name = dn\nprompt = no\n"
            "[dn]\nCN = mailproc test CA\n"
            "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
            "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n"
            "[v3_server]\nbasicConstraints = critical,CA:FALSE\n"
            "keyUsage = critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage = serverAuth\n"
            "subjectAltName = DNS:localhost,IP:127.0.0.1\n"
            "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid,issuer\n",
            encoding="utf-8",
        )
        key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        d = str(directory)
        _run(
            [
                *("openssl", "req", "-config", str(cnf), "-x509", "-new", *key, "-days", "3650"),
                *("-extensions", "v3_ca", "-subj", "/CN=mailproc test CA"),
                *("-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem"),
            ],
            what="creating the test CA",
        )
        _run(
            [
                *("openssl", "req", "-config", str(cnf), "-new", *key, "-subj", "/CN=localhost"),
                *("-keyout", f"{d}/server.key", "-out", f"{d}/server.csr"),
            ],
            what="creating the IMAPS key",
        )
        _run(
            [
                *("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem"),
                *("-CAkey", f"{d}/ca.key", "-set_serial", str(int.from_bytes(os.urandom(8)))),
                *("-days", "3650", "-extfile", str(cnf), "-extensions", "v3_server"),
                *("-out", f"{d}/server.pem"),
            ],
            what="signing the IMAPS certificate",
        )

    def _config(self) -> str:
        root = self._root
        tls = self.tls and self.tls_port is not None
        ssl_lines = (
            f"ssl = yes\nssl_cert = <{root}/tls/server.pem\nssl_key = <{root}/tls/server.key\n"
            "ssl_min_protocol = TLSv1.2\n"
            if tls
            else "ssl = no\n"
        )
        imaps = (
            f"  inet_listener imaps {{\n    address = {self.host}\n    port = {self.tls_port}\n"
            "    ssl = yes\n  }\n"
            if tls
            else "  inet_listener imaps {\n    port = 0\n  }\n"
        )
        return f"""\
# Written by mailproc tests/servers.py: a private Dovecot, nothing from /etc/dovecot.
instance_name = mailproc-test-{self.port}
base_dir = {root}/run
state_dir = {root}/state
log_path = {self.log_path}
info_log_path = {self.log_path}
protocols = imap
listen = {self.host}
{ssl_lines}disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
auth_cache_size = 0
first_valid_uid = {self._uid}
last_valid_uid = {self._uid}
first_valid_gid = {self._gid}
last_valid_gid = {self._gid}
mail_location = maildir:~/Maildir
mail_plugins =
mail_fsync = never
login_greeting = Dovecot (mailproc test) ready.

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_path}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_path}/%u
}}

namespace inbox {{
  inbox = yes
  separator = .
  prefix =
  mailbox Drafts {{
    special_use = \\Drafts
  }}
  mailbox Junk {{
    special_use = \\Junk
  }}
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
}}

protocol imap {{
  mail_max_userip_connections = {self.max_userip_connections}
}}

service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
{imaps}}}

service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def _write_user(self, name: str) -> None:
        # One passwd-file per user (users/<name>): Dovecot re-reads a changed passwd-file at
        # most once a second, but a new user's file is read on the first lookup.
        home = self.home(name)
        if not home.exists():
            home.mkdir(mode=0o700)
            os.chown(home, self._uid, self._gid)
        line = f"{name}:{{PLAIN}}{self._users[name]}:{self._uid}:{self._gid}::{home}::\n"
        path = self.users_path / name
        tmp = self.users_path / f".{name}.tmp"
        tmp.write_text(line, encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, path)

    def add_user(self, name: str, password: str) -> ImapAccount:
        """Add (or change the password of) a user; a running Dovecot sees it at once."""
        self._check_user(name, password)
        with self._lock:
            changed = self._users.get(name, password) != password
            self._users[name] = password
            if self.root is not None:
                self._write_user(name)
                if changed and self.running:
                    time.sleep(1.1)  # let Dovecot's once-a-second passwd-file check see it
        return self.account(name)

    def account(self, name: str) -> ImapAccount:
        return ImapAccount(self, name, self._users[name])

    # lifecycle
    def start(self) -> Self:
        """Start (or start again, on the same ports and mailboxes) and wait for the greeting."""
        if self.running:
            return self
        if self.root is None:
            try:
                self._prepare()
            except BaseException:
                self.close()
                raise
        self._wait_ports_free()
        if self._watchdog is None:
            self._watchdog = _Watchdog(
                pidfiles=[(self._root / "run" / "master.pid", signal.SIGTERM)],
                remove=self._root,
                group=True,
            )
        with open(self.stderr_path, "ab") as out:
            self._proc = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._root,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ports_free(self) -> None:
        ports = [self.port] + ([self.tls_port] if self.tls_port else [])
        deadline = time.monotonic() + 15
        while not all(port_is_bindable(p, self.host) for p in ports):
            if time.monotonic() > deadline:
                raise ServerError(f"Dovecot ports {ports} on {self.host} are still in use")
            time.sleep(0.05)

    def _failure(self, why: str) -> ServerError:
        return ServerError(
            f"Dovecot on {self.host}:{self.port} {why}\n"
            f"--- {self.stderr_path} ---\n{log_tail(self.stderr_path)}\n"
            f"--- {self.log_path} ---\n{log_tail(self.log_path)}"
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer"
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = proc.returncode if proc is not None else None
                raise self._failure(f"exited during startup (exit {code})")
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    greeting = sock.makefile("rb").readline()
                    sock.sendall(b"a LOGOUT\r\n")
                if greeting.startswith(b"* OK"):
                    if self.tls_port:
                        self._check_tls_greeting()
                    return
                last_error = f"unexpected greeting {greeting!r}"
            except OSError as exc:
                last_error = str(exc)
            if time.monotonic() > deadline:
                raise self._failure(f"did not become ready in {self.start_timeout}s: {last_error}")
            time.sleep(0.05)

    def _check_tls_greeting(self) -> None:
        assert self.tls_port is not None
        with (
            socket.create_connection((self.host, self.tls_port), timeout=2) as raw,
            self.ssl_context().wrap_socket(raw, server_hostname="localhost") as sock,
        ):
            greeting = sock.makefile("rb").readline()
            if not greeting.startswith(b"* OK"):
                raise OSError(f"unexpected IMAPS greeting {greeting!r}")
            sock.sendall(b"a LOGOUT\r\n")

    def stop(self, timeout: float = 1.0) -> None:
        """Stop: SIGTERM to all of Dovecot's processes (IMAP sessions end with "Server
        shutting down"), then, after ``timeout`` seconds at most, SIGKILL to what is left.
        Mail and config stay."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            # Signalling the whole group (not just the master, which then takes a second or
            # more to wind its children down) stops Dovecot at once.
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
            # The children end within milliseconds; the master may then sleep for a second
            # or more before it exits, so it gets a short grace period and then SIGKILL.
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if set(_live_group_members(proc.pid)) <= {proc.pid}:
                    break
                time.sleep(0.01)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)
        self._kill_group(proc)

    def kill(self) -> None:
        """Kill the master and all its processes at once (SIGKILL), as in a crash."""
        proc = self._proc
        if proc is None:
            return
        self._kill_group(proc)

    def _kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        # The master leads its own session/process group; its children share it.
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while _live_group_members(proc.pid) and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(0.02)
        self._proc = None

    def restart(self) -> Self:
        """stop() then start(): same ports, same users and mail."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and remove everything (config, logs, mail)."""
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
        if self._watchdog is not None:
            self._watchdog.dismiss()
            self._watchdog = None
        atexit.unregister(self._atexit)

    # administration through doveadm
    def doveadm(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        """Run ``doveadm -c <our config> ARGS``; return stdout (raise ServerError on failure)."""
        argv = [DOVEADM_BINARY, "-c", str(self.config_path), *args]
        try:
            proc = subprocess.run(argv, input=input, capture_output=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerError(f"{' '.join(argv)}: {exc}") from exc
        if check and proc.returncode != 0:
            raise ServerError(
                f"{' '.join(argv)} failed (exit {proc.returncode}): "
                f"{proc.stderr.decode('utf-8', 'replace').strip()}"
            )
        return proc.stdout.decode("utf-8", "replace")

    def folders(self, user: str) -> list[str]:
        return [line for line in self.doveadm("mailbox", "list", "-u", user).splitlines() if line]

    def create_folder(self, user: str, folder: str) -> None:
        if folder not in self.folders(user):
            self.doveadm("mailbox", "create", "-u", user, folder)

    def deliver(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        """Store a message directly (no IMAP), creating the folder if needed."""
        if folder.upper() != "INBOX":
            self.create_folder(user, folder)
        self.doveadm("save", "-u", user, "-m", folder, input=raw)

    def message_count(self, user: str, folder: str = "INBOX") -> int:
        out = self.doveadm("-f", "flow", "mailbox", "status", "-u", user, "messages", folder)
        return int(out.strip().split("=", 1)[1])

    def reset_user(self, user: str) -> None:
        """Delete every message and every folder but INBOX of ``user``."""
        self.doveadm("expunge", "-u", user, "mailbox", "*", "all")
        others = [f for f in self.folders(user) if f.upper() != "INBOX"]
        if others:
            # Children first; a parent that only exists through its children (\Noselect)
            # is gone with them, so "doesn't exist" answers are fine - the re-list decides.
            others.sort(key=lambda name: name.count("."), reverse=True)
            self.doveadm("mailbox", "delete", "-u", user, "-s", *others, check=False)
            left = [f for f in self.folders(user) if f.upper() != "INBOX"]
            if left:
                raise ServerError(f"could not delete the folders {left} of {user!r}")
        subscribed = self.doveadm("mailbox", "list", "-s", "-u", user).splitlines()
        stale = [f for f in subscribed if f and f.upper() != "INBOX"]
        if stale:
            self.doveadm("mailbox", "unsubscribe", "-u", user, *stale, check=False)

    # clients
    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only the test CA (and checks the host name)."""
        if self.ca_file is None:
            raise ServerError("this DovecotServer was started without TLS")
        return ssl.create_default_context(cafile=str(self.ca_file))

    def connect(
        self, user: str, password: str | None = None, *, tls: bool = False, timeout: float = 10
    ) -> IMAPClient:
        """A logged-in IMAPClient for ``user``; the caller logs out."""
        from imapclient import IMAPClient

        if tls:
            if self.tls_port is None:
                raise ServerError("this DovecotServer was started without TLS")
            client = IMAPClient(
                self.host,
                port=self.tls_port,
                ssl=True,
                ssl_context=self.ssl_context(),
                timeout=timeout,
            )
        else:
            client = IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        client.login(user, self._users[user] if password is None else password)
        return client


# --------------------------------------------------------------------------------------------
# SMTP


@dataclass(frozen=True)
class CapturedMessage:
    """One message an :class:`SmtpCapture` accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes
    auth_login: str | None = None
    received_at: float = field(default_factory=time.time)

    @property
    def message(self) -> email.message.EmailMessage:
        """The message parsed with ``email.policy.default``."""
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        return msg

    @property
    def subject(self) -> str | None:
        subject = self.message["Subject"]
        return None if subject is None else str(subject)


@dataclass(frozen=True)
class RefusedRecipient:
    mail_from: str
    rcpt_to: str
    reply: str


class SmtpCapture(_Managed):
    """An SMTP server (aiosmtpd, in this process) that records what it is sent.

    * ``reject={"bounce@example.com": 550}`` (or :meth:`reject_recipient`) refuses recipients;
      a value may be a full reply like ``"550 5.1.1 No such user"``.
    * :meth:`fail_next` answers the next N messages' DATA with a temporary error (451 by
      default; a 421 also closes the connection, as real servers do).
    * :meth:`hold` records each message at once but keeps its DATA answer back until
      :meth:`release`: the client is caught in the middle of a send (to kill it there).
    * ``username``/``password`` enable AUTH PLAIN/LOGIN without TLS (and require it, unless
      ``auth_required=False``); ``oauth2_token`` also accepts AUTH XOAUTH2 with that access
      token for ``username``, as Exchange Online and Gmail do.
    * ``smtputf8=False``: a server that does not offer SMTPUTF8 (RFC 6531).
    """

    host = LOCALHOST

    def __init__(
        self,
        *,
        port: int | None = None,
        reject: Mapping[str, int | str] | None = None,
        username: str | None = None,
        password: str | None = None,
        auth_required: bool | None = None,
        oauth2_token: str | None = None,
        smtputf8: bool = True,
    ) -> None:
        self.port = port or free_port()
        self.smtputf8 = smtputf8
        self.username = username
        self.password = password
        self.oauth2_token = oauth2_token
        self.auth_required = (username is not None) if auth_required is None else auth_required
        self._cond = threading.Condition()
        self._messages: list[CapturedMessage] = []
        self._refused: list[RefusedRecipient] = []
        self._reject: dict[str, str] = {}
        self._failures: list[str] = []
        self._auth_failures = 0
        self._held = False
        self._controller: Any = None
        for address, reply in (reject or {}).items():
            self.reject_recipient(address, reply)

    def __repr__(self) -> str:
        return f"SmtpCapture(port={self.port})"

    # configuration
    def reject_recipient(self, address: str, reply: int | str = 550) -> None:
        """Refuse RCPT TO ``address`` (case-insensitive) with ``reply``."""
        if isinstance(reply, int):
            text = "5.1.1 Mailbox unavailable" if reply >= 500 else "4.2.0 Try again later"
            reply = f"{reply} {text}"
        with self._cond:
            self._reject[address.lower()] = reply

    def fail_next(self, count: int = 1, code: int = 451, text: str | None = None) -> None:
        """Answer the DATA of the next ``count`` messages with a temporary failure."""
        reply = f"{code} {text or '4.3.0 Temporary failure, try again later'}"
        with self._cond:
            self._failures.extend([reply] * count)

    def hold(self) -> None:
        with self._cond:
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False

    # results
    @property
    def messages(self) -> list[CapturedMessage]:
        with self._cond:
            return list(self._messages)

    @property
    def refused(self) -> list[RefusedRecipient]:
        """Every RCPT this server refused."""
        with self._cond:
            return list(self._refused)

    @property
    def auth_failures(self) -> int:
        with self._cond:
            return self._auth_failures

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()
            self._refused.clear()

    def wait_for(self, count: int = 1, timeout: float = 10) -> list[CapturedMessage]:
        """Wait until at least ``count`` messages arrived; return them all."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._messages) >= count, timeout=timeout):
                raise TimeoutError(
                    f"SMTP capture on port {self.port}: expected {count} message(s) within "
                    f"{timeout}s, got {len(self._messages)}"
                )
            return list(self._messages)

    # aiosmtpd hooks (run in the controller's thread)
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self._cond:
            reply = self._reject.get(address.lower())
            if reply is not None:
                self._refused.append(RefusedRecipient(envelope.mail_from or "", address, reply))
                return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._cond:
            if self._failures:
                reply = self._failures.pop(0)
                if reply.startswith("421") and server.transport is not None:
                    server.loop.call_soon(server.transport.close)
                return reply
            login = None
            if session.authenticated and session.auth_data is not None:
                raw_login = getattr(session.auth_data, "login", None)
                if isinstance(raw_login, bytes):
                    login = raw_login.decode("utf-8", "replace")
            data = envelope.original_content or envelope.content
            self._messages.append(
                CapturedMessage(
                    mail_from=envelope.mail_from or "",
                    rcpt_tos=tuple(envelope.rcpt_tos),
                    data=bytes(data),
                    auth_login=login,
                )
            )
            self._cond.notify_all()
        while self._is_held():
            await asyncio.sleep(0.01)
        return "250 Message accepted"

    def _is_held(self) -> bool:
        with self._cond:
            return self._held

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and self.username is not None
            and auth_data.login.decode("utf-8", "replace") == self.username
            and auth_data.password.decode("utf-8", "replace") == self.password
        )
        if not ok:
            with self._cond:
                self._auth_failures += 1
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> Any:
        """aiosmtpd calls handler methods named auth_<MECHANISM> (and advertises them)."""
        import base64

        from aiosmtpd.smtp import AuthResult, LoginPassword

        try:
            fields = base64.b64decode(args[1], validate=True).decode().split("\x01")
            given = dict(f.split("=", 1) for f in fields if "=" in f)
        except (IndexError, ValueError):
            given = {}
        user, bearer = given.get("user", ""), given.get("auth", "")
        ok = (
            self.oauth2_token is not None
            and user == self.username
            and bearer == f"Bearer {self.oauth2_token}"
        )
        if not ok:
            with self._cond:
                self._auth_failures += 1
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, handled=False, auth_data=LoginPassword(user.encode(), b""))

    # lifecycle
    def start(self) -> Self:
        if self._controller is not None:
            return self
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP

        class _Controller(Controller):
            def factory(self) -> Any:
                # AUTH without TLS is the point here (loopback tests): no warning per session.
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
                    return SMTP(self.handler, **self.SMTP_kwargs)

        kwargs: dict[str, Any] = {"enable_SMTPUTF8": self.smtputf8}
        if self.username is not None:
            kwargs.update(
                authenticator=self._authenticate,
                auth_require_tls=False,
                auth_required=self.auth_required,
            )
        controller = _Controller(self, hostname=self.host, port=self.port, **kwargs)
        try:
            controller.start()
        except Exception as exc:
            raise ServerError(
                f"SMTP capture could not start on {self.host}:{self.port}: {exc}"
            ) from exc
        self._controller = controller
        self._register_atexit()
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()
            atexit.unregister(self._atexit)

    def close(self) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------
# Postfix


POSTFIX_BINARY = "/usr/sbin/postfix"
POSTFIX_MASTER = "/usr/share/postfix/master.cf.dist"  # the package's, whatever /etc holds


class PostfixServer(_Rooted):
    """A private Postfix instance (needs root, and Postfix installed): its own
    config_directory, queue_directory and data_directory under a fresh /tmp directory, SMTP
    on 127.0.0.1:``port``, nothing started system-wide.

    It accepts mail from loopback for the addresses of ``mailboxes`` (address -> a Maildir
    path relative to ``mailbox_base``, ending in "/") and delivers it with Postfix's
    ``virtual`` agent into those Maildirs, as ``uid``/``gid``: point ``mailbox_base`` at a
    :class:`DovecotServer`'s ``home`` directory and Dovecot serves what Postfix delivered.
    Anything else is refused at RCPT ("User unknown"), and nothing leaves the machine.
    ``recipient_delimiter`` is Postfix's setting of that name: empty (Postfix's default)
    makes ``support+tag@`` an unknown user; "+" delivers it to ``support@``.
    """

    host = LOCALHOST

    def __init__(
        self,
        mailbox_base: Path,
        mailboxes: Mapping[str, str],
        *,
        uid: int,
        gid: int,
        recipient_delimiter: str = "",
        port: int | None = None,
        start_timeout: float = 30,
    ) -> None:
        self.mailbox_base = Path(mailbox_base)
        self.mailboxes = dict(mailboxes)
        self.uid, self.gid = uid, gid
        self.recipient_delimiter = recipient_delimiter
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.root: Path | None = None
        self._watchdog: _Watchdog | None = None

    def __repr__(self) -> str:
        return f"PostfixServer(port={self.port}, delimiter={self.recipient_delimiter!r})"

    @property
    def config_dir(self) -> Path:
        return self._root / "conf"

    @property
    def log_path(self) -> Path:
        return self._root / "postfix.log"

    def _postfix(self, *args: str, what: str) -> None:
        _run(
            [POSTFIX_BINARY, "-c", str(self.config_dir), *args],
            what=what,
            log=self.log_path,
            timeout=self.start_timeout,
        )

    def start(self) -> Self:
        if self.root is not None:
            return self
        if not os.path.exists(POSTFIX_BINARY):
            raise ServerError(
                f"Postfix is not installed ({POSTFIX_BINARY} missing): install the Debian "
                "package 'postfix' (scripts/test does)"
            )
        if not _is_root():
            raise ServerError("the Postfix test server must be started as root")
        self.root = _scratch_dir("mailproc-postfix-")
        self._register_atexit()
        try:
            self._prepare()
            self._watchdog = _Watchdog(
                pidfiles=[(self._root / "queue" / "pid" / "master.pid", signal.SIGTERM)],
                remove=self._root,
                group=False,
            )
            self._postfix("start", what=f"starting Postfix on {self.host}:{self.port}")
            self._wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def _prepare(self) -> None:
        root = self._root
        for name in ("conf", "queue", "data"):
            (root / name).mkdir(mode=0o755)
        os.chown(root / "data", pwd.getpwnam("postfix").pw_uid, -1)
        maps = "".join(f"{address} {path}\n" for address, path in self.mailboxes.items())
        (self.config_dir / "vmailbox").write_text(maps, encoding="utf-8")
        domains = sorted({address.rpartition("@")[2] for address in self.mailboxes})
        (self.config_dir / "main.cf").write_text(
            f"""\
# Written by mailproc tests/support/servers.py: a private Postfix, nothing from /etc/postfix.
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.mailproc.test
mydomain = mailproc.test
myorigin = mailproc.test
mydestination =
inet_interfaces = {self.host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject
virtual_mailbox_domains = {", ".join(domains)}
virtual_mailbox_base = {self.mailbox_base}
virtual_mailbox_maps = texthash:{self.config_dir}/vmailbox
virtual_uid_maps = static:{self.uid}
virtual_gid_maps = static:{self.gid}
recipient_delimiter = {self.recipient_delimiter}
relayhost =
default_transport = error:5.7.1 no mail leaves the test machine
local_transport = error:5.1.1 no local delivery here
alias_maps =
alias_database =
smtputf8_enable = yes
biff = no
maillog_file = {self.log_path}
maillog_file_prefixes = {root}
""",
            encoding="utf-8",
        )
        (self.config_dir / "master.cf").write_text(self._master(), encoding="utf-8")

    def _master(self) -> str:
        """The package's master.cf with SMTP moved to our port, and nothing chrooted (a chroot
        would need copies of the system's files in the queue directory)."""
        lines = []
        for line in Path(POSTFIX_MASTER).read_text(encoding="utf-8").splitlines():
            fields = line.split()
            if not fields or line[0] in "# \t":
                lines.append(line)
            elif fields[:2] == ["smtp", "inet"]:
                lines.append(f"{self.host}:{self.port} inet n - n - - smtpd")
            elif len(fields) >= 8:
                fields[4] = "n"
                lines.append(" ".join(fields))
            else:
                lines.append(line)
        return "\n".join(lines) + "\n"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=2) as sock:
                    if sock.makefile("rb").readline().startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"Postfix on {self.host}:{self.port} did not answer\n{log_tail(self.log_path)}"
                )
            time.sleep(0.05)

    def queue_empty(self) -> bool:
        out = _run(
            ["/usr/sbin/postqueue", "-c", str(self.config_dir), "-p"], what="postqueue -p"
        ).stdout
        return "Mail queue is empty" in out

    def close(self) -> None:
        root = self.root
        if root is None:
            return
        with contextlib.suppress(ServerError):
            self._postfix("stop", what="stopping Postfix")
        pidfile = root / "queue" / "pid" / "master.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().split()[0])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(pid, 0)
                time.sleep(0.05)
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
        self.root = None
        if self._watchdog is not None:
            self._watchdog.dismiss()
            self._watchdog = None
        atexit.unregister(self._atexit)
