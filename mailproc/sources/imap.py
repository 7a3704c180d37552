"""An IMAP folder as a mail source, through imapclient: UIDs, batches, IDLE, settle after commit.

Connections are TLS (implicit or STARTTLS) verified against the system's CAs, or the private CA
in `ca_file`; plain text only when the configuration says `security = "plain"`. The password
comes from the environment variable the configuration names, an XOAUTH2 token from a file or a
command; neither is ever logged (imapclient's own protocol log is kept at WARNING, see logs.py).

Settling uses MOVE where the server has it, else COPY, \\Deleted and an EXPUNGE of exactly those
UIDs (UID EXPUNGE, UIDPLUS); without UIDPLUS a plain EXPUNGE runs only when every \\Deleted mail
in the folder is one just settled, so no one else's mail is removed unseen.
"""

from __future__ import annotations

import ipaddress
import logging
import select
import ssl
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from mailproc.config.credentials import SecretUnreadable, read_secret
from mailproc.config.sources import ImapSourceConfig, Settle
from mailproc.desk.outcome import Outcome
from mailproc.runtime.oauth2 import TokenUnavailable, access_token
from mailproc.runtime.wake import Wake
from mailproc.sources.drain import CredentialsMissing, Fetched, Ref, SourceUnavailable
from mailproc.sources.health import Cursor

log = logging.getLogger(__name__)

SEEN, DELETED = rb"\Seen", rb"\Deleted"
NEW_MAIL = (b"EXISTS", b"RECENT")


class _Refused(Exception):
    """The server answered NO or BAD to one command: the connection itself is fine."""


def check_credentials(config: ImapSourceConfig, environ: Mapping[str, str]) -> None:
    """At start, so a missing variable or file is a configuration error, not a retry loop."""
    ref = config.password_ref
    try:
        if ref is not None and read_secret(ref, environ) is None:
            raise CredentialsMissing(f"no password: set {ref.describe()}")
    except SecretUnreadable as exc:
        raise CredentialsMissing(str(exc)) from None
    if config.oauth2_token_file is not None and not config.oauth2_token_file.is_file():
        raise CredentialsMissing(f"oauth2_token_file {config.oauth2_token_file} does not exist")
    if config.ca_file is not None and not config.ca_file.is_file():
        raise CredentialsMissing(f"ca_file {config.ca_file} does not exist")


def connect(
    config: ImapSourceConfig,
    environ: Mapping[str, str],
    helper_environ: Mapping[str, str] | None = None,
) -> IMAPClient:
    """A logged-in client; raises OSError or IMAPClientError (see `_errors`). The token
    command runs with `helper_environ` (the environment without our secrets)."""
    context = ssl.create_default_context(
        cafile=str(config.ca_file) if config.ca_file is not None else None
    )
    implicit = config.security == "tls"
    client = IMAPClient(
        config.host,
        port=config.effective_port,
        ssl=implicit,
        ssl_context=context if implicit else None,
        timeout=config.timeout_seconds,
    )
    try:
        if config.security == "starttls":
            client.starttls(context)
        if config.auth == "xoauth2":
            client.oauth2_login(config.username, _token(config, helper_environ))
        else:
            client.login(config.username, _password(config, environ))
    except BaseException:
        with suppress(Exception):
            client.shutdown()
        raise
    return client


def _password(config: ImapSourceConfig, environ: Mapping[str, str]) -> str:
    ref = config.password_ref
    try:
        password = read_secret(ref, environ) if ref is not None else None
    except SecretUnreadable as exc:
        raise SourceUnavailable(str(exc)) from None
    if not password:
        raise SourceUnavailable(f"no password: set {ref.describe() if ref else 'password_env'}")
    return password


def _token(config: ImapSourceConfig, environ: Mapping[str, str] | None) -> str:
    """Read at every login: tokens live an hour, the helper or file keeps them fresh."""
    try:
        return access_token(config.oauth2_token_command, config.oauth2_token_file, environ)
    except TokenUnavailable as exc:
        raise SourceUnavailable(str(exc)) from None


@contextmanager
def _errors(action: str) -> Iterator[None]:
    """Every network or protocol failure means the same to the daemon: reconnect later."""
    try:
        yield
    except SourceUnavailable:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise SourceUnavailable(f"{action}: certificate verification failed: {exc}") from exc
    except (OSError, IMAPClientError) as exc:
        detail = str(exc) or type(exc).__name__
        raise SourceUnavailable(f"{action}: {detail}") from exc


def by_size(sized: Sequence[tuple[int, int]], max_bytes: int) -> Iterator[list[int]]:
    """Split (uid, size) pairs into runs of at most max_bytes (a bigger mail goes alone)."""
    run: list[int] = []
    total = 0
    for uid, size in sized:
        if run and total + size > max_bytes:
            yield run
            run, total = [], 0
        run.append(uid)
        total += size
    if run:
        yield run


class ImapSource:
    def __init__(
        self,
        name: str,
        config: ImapSourceConfig,
        environ: Mapping[str, str],
        helper_environ: Mapping[str, str] | None = None,
    ) -> None:
        """`helper_environ`: the token command's environment (default: `environ`)."""
        self.name, self.config, self.service = name, config, config.service
        self.cursor = Cursor()
        self._environ = environ
        self._helper_environ = environ if helper_environ is None else helper_environ
        self._client: IMAPClient | None = None
        self._readonly = False
        self._caps: frozenset[bytes] = frozenset()
        self._settled: set[int] = set()  # flagged \Deleted by us, for servers without UIDPLUS
        if config.security == "plain" and not _loopback(config.host):
            log.warning("%s: security = plain: password and mail cross the network in clear", name)

    # --- connection -------------------------------------------------------------------------

    def open(self, readonly: bool) -> None:
        self.close(broken=True)
        with _errors(f"connecting to {self.config.host}:{self.config.effective_port}"):
            self._client = connect(self.config, self._environ, self._helper_environ)
            self._caps = frozenset(self._client.capabilities())
            self._settled = set()
            log.debug("%s: logged in; server offers %s", self.name, b" ".join(sorted(self._caps)))
            if not readonly:
                for folder in self.config.folders:
                    self._ensure_folder(folder)
        self._readonly = readonly

    def close(self, broken: bool = False) -> None:
        """LOGOUT (which never expunges); after an error just drop the socket."""
        client, self._client = self._client, None
        if client is None:
            return
        with suppress(Exception):
            if broken:
                client.shutdown()
            else:
                client.logout()

    def absent_folders(self) -> list[str]:
        """The folders mail is settled into that do not exist yet (created on first open)."""
        client = self._need()
        with _errors("listing folders"):
            return [f for f in self.config.folders if not client.folder_exists(f)]

    def _ensure_folder(self, folder: str) -> None:
        client = self._need()
        if client.folder_exists(folder):
            return
        try:
            client.create_folder(folder)
        except IMAPClientError:
            if not client.folder_exists(folder):  # created by someone else meanwhile is fine
                raise
        with suppress(IMAPClientError):
            client.subscribe_folder(folder)
        log.info("%s: created folder %s", self.name, folder)

    def _need(self) -> IMAPClient:
        if self._client is None:
            raise SourceUnavailable("not connected")
        return self._client

    # --- reading ------------------------------------------------------------------------------

    def listing(self) -> list[Ref]:
        """UIDs waiting: all of them when settled mail moves out, else those above the cursor."""
        client = self._need()
        with _errors(f"selecting {self.config.folder}"):
            info = client.select_folder(self.config.folder, readonly=self._readonly)
            self.cursor = self._adopt(int(info[b"UIDVALIDITY"]))
            if self.config.settle is Settle.MOVE:
                uids = client.search("ALL")
                self._settled &= set(uids)
            else:
                start = self.cursor.last_uid + 1
                uids = [uid for uid in client.search(["UID", f"{start}:*"]) if uid >= start]
        return sorted(uids)

    def _adopt(self, uidvalidity: int) -> Cursor:
        """The stored cursor, unless the folder's UIDs were renumbered (or it is another)."""
        cursor, mailbox = self.cursor, self.config.mailbox
        if cursor.mailbox == mailbox and cursor.uidvalidity == uidvalidity:
            return cursor
        self._settled = set()
        if cursor.mailbox == mailbox and cursor.uidvalidity is not None:
            log.warning(
                "%s: UIDVALIDITY of %s changed from %d to %d: reading the whole folder again; "
                "mail already stored is recognised by its key and only settled",
                self.name,
                self.config.folder,
                cursor.uidvalidity,
                uidvalidity,
                extra={"source": self.name},
            )
        return Cursor(mailbox, uidvalidity, 0)

    def batches(self, refs: Sequence[Ref]) -> Iterator[Sequence[Ref]]:
        """Runs of UIDs bounded in count and in bytes, so memory stays flat on any backlog."""
        client = self._need()
        step = self.config.batch_size
        for start in range(0, len(refs), step):
            chunk = [int(ref) for ref in refs[start : start + step]]
            with _errors("fetching sizes"):
                sizes = client.fetch(chunk, ["RFC822.SIZE"])
            sized = [(uid, int(sizes[uid][b"RFC822.SIZE"])) for uid in chunk if uid in sizes]
            yield from by_size(sized, self.config.batch_bytes)

    def fetch(self, refs: Sequence[Ref]) -> Iterator[Fetched]:
        """BODY.PEEK so that fetching alone never marks a mail \\Seen.

        A mail removed since the listing (another client, a retention rule) comes back absent
        or with a NIL body (Dovecot); one the server cannot read makes it refuse the whole
        FETCH, and Dovecot then closes the connection. Either way that mail is logged with its
        UID and skipped, and the rest of the batch is fetched (one by one, reconnecting after
        each refusal) and applied."""
        uids = [int(ref) for ref in refs]
        try:
            data = self._fetch(uids)
        except _Refused as exc:
            log.warning("%s: FETCH of %d mail(s) refused: %s", self.name, len(uids), exc)
            data = self._one_by_one(uids)
        for uid in uids:
            body = data.get(uid, {}).get(b"BODY[]")
            if isinstance(body, bytes):
                yield Fetched(uid, body, DELETED in data[uid].get(b"FLAGS", ()))
            else:
                log.warning(
                    "%s: UID %d could not be fetched (removed by another client since the "
                    "listing, or unreadable on the server); skipped",
                    self.name,
                    uid,
                    extra={"source": self.name, "uid": uid},
                )

    def _fetch(self, uids: list[int]) -> dict[int, dict[bytes, Any]]:
        """One FETCH; a refusal is `_Refused`, a broken socket SourceUnavailable."""
        client = self._need()
        try:
            data: dict[int, dict[bytes, Any]] = client.fetch(uids, ["BODY.PEEK[]", "FLAGS"])
        except IMAPClientError as exc:  # imaplib says "abort" when the server hangs up, too
            raise _Refused(str(exc)) from exc
        except OSError as exc:
            raise SourceUnavailable(f"fetching mail: {exc}") from exc
        return data

    def _one_by_one(self, uids: list[int]) -> dict[int, dict[bytes, Any]]:
        data: dict[int, dict[bytes, Any]] = {}
        for uid in uids:
            self._recover()
            with suppress(_Refused):
                data.update(self._fetch([uid]))
        return data

    def _recover(self) -> None:
        """Log in again if the server hung up after refusing a FETCH, in the same folder;
        renumbered UIDs (or no server) make the whole batch wait for the next pass."""
        with suppress(IMAPClientError, OSError):
            self._need().noop()
            return
        expected = self.cursor.uidvalidity
        self.open(self._readonly)
        with _errors(f"selecting {self.config.folder}"):
            info = self._need().select_folder(self.config.folder, readonly=self._readonly)
        if int(info[b"UIDVALIDITY"]) != expected:
            raise SourceUnavailable(f"UIDVALIDITY of {self.config.folder} changed")

    # --- settling -----------------------------------------------------------------------------

    def destination(self, outcome: Outcome) -> str | None:
        if outcome.quarantined:
            return self.config.quarantine_folder
        if outcome.automatic and self.config.automatic_folder is not None:
            return self.config.automatic_folder
        return self.config.processed_folder if self.config.settle is Settle.MOVE else None

    def describe(self, outcome: Outcome) -> str:
        folder = self.destination(outcome)
        return f"moved to {folder}" if folder else "flagged \\Seen"

    def settle(self, done: Sequence[tuple[Fetched, Outcome]]) -> None:
        client = self._need()
        moves: dict[str, list[Fetched]] = {}
        seen: list[int] = []
        for item, outcome in done:
            folder = self.destination(outcome)
            if folder is None:
                seen.append(int(item.ref))
            else:
                moves.setdefault(folder, []).append(item)
        with _errors("settling"):
            if seen:
                client.add_flags(seen, [SEEN], silent=True)
            for folder, items in moves.items():
                self._move(client, items, folder)
        top = max(int(item.ref) for item, _ in done)
        self.cursor = replace(self.cursor, last_uid=max(self.cursor.last_uid, top))

    def _move(self, client: IMAPClient, items: list[Fetched], folder: str) -> None:
        uids = [int(item.ref) for item in items]
        if b"MOVE" in self._caps:
            client.move(uids, folder)
            return
        # Already \Deleted: copied before a crash cut this short (or deleted by a person);
        # stored in the database either way, so copied once at most.
        fresh = [int(item.ref) for item in items if not item.deleted]
        if fresh:
            client.copy(fresh, folder)
        client.add_flags(uids, [DELETED], silent=True)
        if b"UIDPLUS" in self._caps:
            client.uid_expunge(uids)
            return
        self._settled.update(uids)
        if set(client.search("DELETED")) <= self._settled:  # no one else's mail goes with them
            client.expunge()
            self._settled.clear()

    # --- waiting ------------------------------------------------------------------------------

    def wait(self, wake: Wake) -> None:
        if not (self.config.idle and b"IDLE" in self._caps):
            wake.wait(self.config.poll_seconds)
            return
        client = self._need()
        with _errors("IDLE"):
            client.idle()
            if not self._buffered(client):
                self._idle_until(client, time.monotonic() + self.config.idle_seconds, wake)
            client.idle_done()

    def _buffered(self, client: IMAPClient) -> bool:
        """Whether a response came with IDLE's continuation, into imaplib's read buffer where
        poll() cannot see it: Dovecot announces mail that arrived since the last command that
        way, and waiting on the socket would leave it for the next IDLE timeout."""
        reader = getattr(getattr(client, "_imap", None), "file", None)
        if reader is None:
            return False
        sock = client.socket()
        sock.setblocking(False)
        try:
            return bool(reader.peek(1))
        except OSError:  # nothing buffered, and nothing readable yet (SSLWantReadError too)
            return False
        finally:
            sock.settimeout(self.config.timeout_seconds)

    def _idle_until(self, client: IMAPClient, deadline: float, wake: Wake) -> None:
        """Until new mail is announced, the deadline passes or `wake` is set; an IDLE
        connection that turns readable with nothing to read has been closed."""
        sock = client.socket().fileno()
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        poller.register(wake.fileno(), select.POLLIN)
        empty = 0
        while not wake.is_set() and (remaining := deadline - time.monotonic()) > 0:
            if not any(fd == sock for fd, _ in poller.poll(remaining * 1000)):
                continue
            responses = client.idle_check(timeout=0)
            empty = 0 if responses else empty + 1
            if empty >= 2:
                raise SourceUnavailable("IDLE: connection closed by the server")
            for response in responses:
                if response[0] == b"BYE":
                    raise SourceUnavailable("IDLE: the server is shutting down")
                if len(response) > 1 and response[1] in NEW_MAIL:
                    return


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
