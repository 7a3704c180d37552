"""The daemon's local sockets: where `mailproc ingest -` hands in its mail (`daemon.socket`),
and the command server's (`daemon.command_socket`, see CommandServer at the end).

An MTA that pipes each mail into `mailproc ingest -` starts a process per mail, and each pays
again for what it imports and loads; the daemon has paid once. So when `daemon.socket` names a
path, the daemon listens there and `ingest -` offers its mail to it first (the spamc/spamd
pattern): the daemon applies it with its Desk, in a transaction of its own, exactly as `ingest -`
would, and answers with the outcome once that is committed. With no daemon listening,
`ingest -` applies the mail itself, so the pipe never depends on the daemon; a mail the daemon
committed but could not answer for comes again from the client as a duplicate, a no-op.

Whoever may connect may hand in mail, as whoever may run `ingest -` on the database may: the
socket is made 0660 (the daemon's user and group) before it accepts anything, in a folder the
administrator chooses. Mails are taken one at a time; others wait in the socket's backlog.
"""

from __future__ import annotations

import hashlib
import logging
import os
import select
import socket
import subprocess
import sys
import threading
from contextlib import suppress
from pathlib import Path

from mailproc.desk.attempts import groups
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Origin, Outcome, fields
from mailproc.runtime import handoff
from mailproc.runtime.wake import Wake
from mailproc.store.errors import StoreUnavailable

log = logging.getLogger(__name__)

MODE = 0o660
TIMEOUT = 60.0  # seconds a client may take to send its mail
BACKLOG = 64


class Listener:
    """Serves the socket on a thread of its own until stop()."""

    def __init__(self, path: Path, desk: Desk) -> None:
        self.path, self.desk = path, desk
        self.max_size = 4 * desk.settings.limits.max_message_bytes  # larger: `ingest -` keeps it
        self.wake = Wake()
        self.thread = threading.Thread(target=self._run, name="ingest-socket", daemon=True)
        self._server: socket.socket | None = None
        self._inode: int | None = None

    def start(self) -> None:
        """Listen, unless another daemon does; a socket that cannot be made is logged and
        left out (`ingest -` then stores its mail itself), never a reason to stop the daemon."""
        try:
            self._server = bound(self.path, MODE)
        except OSError as exc:
            log.error("cannot listen at %s for `ingest -`: %s", self.path, exc)
            return
        if self._server is None:
            return
        self._inode = self.path.stat().st_ino
        self.thread.start()
        log.info("taking mail from `ingest -` at %s", self.path)

    def stop(self, timeout: float = 60) -> None:
        self.wake.set()
        if self.thread.is_alive():
            self.thread.join(timeout)
        if self._server is not None:
            self._server.close()
            with suppress(OSError):
                if self.path.stat().st_ino == self._inode:  # still ours, not a successor's
                    self.path.unlink()
        if not self.thread.is_alive():
            self.wake.close()

    def _run(self) -> None:
        assert self._server is not None
        poller = select.poll()
        poller.register(self._server, select.POLLIN)
        poller.register(self.wake.fileno(), select.POLLIN)
        while not self.wake.is_set():
            poller.poll()
            if self.wake.is_set():
                break
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(TIMEOUT)
                self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            service, raw = handoff.receive(conn, self.max_size)
        except EOFError:  # a probe (another daemon starting) or a client gone at once
            return
        except (ValueError, OSError) as exc:
            log.warning("ingest socket: request refused: %s", exc)
            _answer(conn, refused=str(exc))
            return
        if service is not None and service not in self.desk.settings.services:
            _answer(conn, unknown_service=service)
            return
        try:
            outcome = self._apply(raw, Origin("ingest", service))
        except StoreUnavailable as exc:
            _answer(conn, unavailable=str(exc))
            return
        except Exception:  # a bug: the client stores the mail itself, and says so
            log.exception("ingest socket: internal error")
            _answer(conn, refused="internal error in the daemon")
            return
        log.info(
            "ingest socket: <%s> from %s: %s",
            outcome.key,
            outcome.sender or "-",
            outcome.summary,
            extra={"source": "ingest", "message_id": outcome.key, "incident": outcome.incident},
        )
        _answer(conn, **fields(outcome))

    def _apply(self, raw: bytes, origin: Origin) -> Outcome:
        """As `ingest -` applies it: marked as in hand first, under the hash of its bytes, so a
        mail that kills the daemon is known as such when the pipe stores it itself, and
        when it comes again (mailproc.desk.attempts)."""
        key = "sha256:" + hashlib.sha256(raw).hexdigest()
        attempts = self.desk.attempts
        outcome = None
        for part in groups(attempts, [raw], lambda _: key):
            try:
                with self.desk.batch(part.keys) as handle:
                    outcome = handle(raw, origin, part.crashed.get(key))
            except BaseException:
                attempts.release(part)
                raise
        assert outcome is not None
        return outcome


def _answer(conn: socket.socket, **reply: object) -> None:
    with suppress(OSError):  # gone: it stores the mail itself, a duplicate if this one stored it
        handoff.answer(conn, **reply)


def bound(path: Path, mode: int) -> socket.socket | None:
    """A listening socket at `path`, given `mode` before anyone can connect; None when another
    daemon listens there already."""
    if _answered(path):
        log.warning("%s: another daemon takes mail there; this one does not listen", path)
        return None
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(temporary))
        os.chmod(temporary, mode)
        os.replace(temporary, path)  # a stale socket of a dead daemon goes
        server.listen(BACKLOG)
    except OSError:
        server.close()
        temporary.unlink(missing_ok=True)
        raise
    return server


def _answered(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class CommandServer:
    """The process that runs quick commands for the daemon's user (`daemon.command_socket`;
    `mailproc serve-commands` in mailproc.cli.run), started and stopped with the daemon."""

    def __init__(self, path: Path, config: str) -> None:
        self.path = path
        given = Path(config)
        self.argv = [sys.executable, "-m", "mailproc"]
        self.argv += ["--config", str(given)] if given.is_file() else []
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        self.argv += ["--log-level", level, "serve-commands", str(path), str(os.getpid())]
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
        log.info("quick commands are run at %s", self.path)

    def stop(self, timeout: float = 10) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout)
