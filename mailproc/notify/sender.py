"""Deliver the outbox with aiosmtplib: claim due rows, send them over one connection, record
what the server said.

Rows are claimed with a lease (a token and a time) in a short transaction that picks them with
FOR UPDATE SKIP LOCKED on PostgreSQL (SQLite serialises writers anyway), so several senders
never take the same row. Each row is marked in its own transaction right after the server's
answer; the only moment a mail can go out twice is a crash between the server accepting it and
that commit (or a sender outliving its lease, which it avoids by stopping before the lease
ends); the mail sent again then carries the same Message-ID, so mail clients fold the two. A
lease names its holder (mailproc.runtime.holder): one held by a process of this machine that
is gone (killed, crashed) is taken back at once, not after the lease's time. A 4xx answer or
an unreachable server defers the row with a doubling backoff, so nothing is lost; a 5xx
answer for the recipient marks it failed with the server's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from ipaddress import ip_address
from typing import Any

import aiosmtplib
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from mailproc.clock import WallClock
from mailproc.config.credentials import SecretUnreadable, read_secret, without_secrets
from mailproc.config.settings import ConfigError, Settings
from mailproc.notify.letter import (
    Letter,
    ascii_domain,
    compose,
    letter_from_json,
    needs_smtputf8,
)
from mailproc.runtime import holder
from mailproc.runtime.oauth2 import TokenUnavailable, access_token, xoauth2_string
from mailproc.store import db
from mailproc.store.db import FAILED, PENDING, SENT
from mailproc.times import whole_second

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    envelope_from: str
    recipient: str
    letter: dict[str, Any] | None
    attempts: int


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


class _ConnectionLost(Exception):
    """The connection is gone: what is left of the batch waits for the next run."""


def send_pending(
    settings: Settings, engine: Engine, clock: WallClock, environ: Mapping[str, str] | None = None
) -> int:
    """Send what is due; returns how many mails the server accepted. For a periodic job."""
    return asyncio.run(deliver_pending(settings, engine, clock, environ)).sent


async def deliver_pending(
    settings: Settings,
    engine: Engine,
    clock: WallClock,
    environ: Mapping[str, str] | None = None,
    *,
    now: bool = False,
) -> SendReport:
    """Send what is due over one connection, batch after batch, until nothing is due;
    `now`: also what waits for its retry (an administrator who fixed the cause)."""
    environ = os.environ if environ is None else environ
    login = smtp_login(settings, environ)
    run = _Run(settings, engine, clock, secrets.token_hex(8))
    here = holder.this_process()
    take_back(engine, clock(), here)
    client: aiosmtplib.SMTP | None = None
    try:
        if now:
            retry_now(engine, clock())
        while batch := claim(engine, settings, clock(), run.token, here):
            if client is None:
                try:
                    client = await connect(settings, login)
                except (aiosmtplib.SMTPException, OSError, TokenUnavailable) as exc:
                    run.unreachable(batch, exc)
                    break
            try:
                await run.send_batch(client, batch)
            except _ConnectionLost:
                break
    except BaseException:  # an error cut the run short: its leases are free at once
        with contextlib.suppress(Exception):
            _release_run(engine, run.token)
        raise
    finally:
        if client is not None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
    return run.report


@dataclass(frozen=True, slots=True)
class Login:
    """How to log in: nothing (a relay that needs no login), a password, or an XOAUTH2 token
    got at every connection (`helper_environ`: the token command's, without our secrets)."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    helper_environ: Mapping[str, str] | None = field(default=None, repr=False)


def smtp_login(settings: Settings, environ: Mapping[str, str]) -> Login:
    """The login the configuration asks for; ConfigError when its secret is missing."""
    smtp = settings.smtp
    if smtp.auth == "xoauth2":
        _in_clear(smtp.host, smtp.security, "access token")
        helper = without_secrets(environ, settings.secret_refs())
        return Login(smtp.username, helper_environ=helper)
    return Login(smtp.username, smtp_password(settings, environ))


def _in_clear(host: str, security: str, what: str) -> None:
    if security == "none" and not _loopback(host):
        raise ConfigError(
            f"smtp.security is 'none': refusing to send the {what} unencrypted to {host}"
        )


def smtp_password(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The login password (mailproc.config.credentials); None when no login is configured."""
    smtp = settings.smtp
    if not smtp.username or smtp.auth != "password":
        return None
    try:
        password = read_secret(smtp.password_ref, environ)
    except SecretUnreadable as exc:
        raise ConfigError(f"smtp.password_file: {exc}") from None
    if not password:
        raise ConfigError(
            f"smtp.username is set, but there is no password: set {smtp.password_ref.describe()}"
        )
    _in_clear(smtp.host, smtp.security, "password")
    return password


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


async def connect(settings: Settings, login: Login) -> aiosmtplib.SMTP:
    """Connected (TLS as configured, certificate verified) and logged in."""
    smtp = settings.smtp
    context = ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None)
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.effective_port,
        use_tls=smtp.security == "tls",
        start_tls=smtp.security == "starttls",
        tls_context=context,
        timeout=smtp.timeout,
    )
    await client.connect()
    try:
        if smtp.auth == "xoauth2" and login.username:
            token = access_token(
                smtp.oauth2_token_command, smtp.oauth2_token_file, login.helper_environ
            )
            await _xoauth2(client, login.username, token)
        elif login.password is not None and login.username:
            await client.login(login.username, login.password)
    except BaseException:
        client.close()
        raise
    return client


async def _xoauth2(client: aiosmtplib.SMTP, username: str, token: str) -> None:
    """AUTH XOAUTH2 (Google's and Microsoft's SASL mechanism for OAuth2 access tokens). On
    failure the server sends a base64 JSON error as a 334 challenge; an empty line then gets
    the final refusal."""
    if client.is_ehlo_or_helo_needed:
        await client.ehlo()
    if "xoauth2" not in client.server_auth_methods:  # aiosmtplib keeps them lower-case
        raise aiosmtplib.SMTPException(f"{client.hostname} does not offer AUTH XOAUTH2")
    initial = xoauth2_string(username, token).encode()
    response = await client.execute_command(b"AUTH", b"XOAUTH2", initial)
    if response.code == 334:
        response = await client.execute_command(b"")
    if response.code != 235:
        raise aiosmtplib.SMTPAuthenticationError(response.code, response.message)


async def probe(settings: Settings, environ: Mapping[str, str]) -> str:
    """Connect and log in as the sender would, send nothing: what happened, in words. Raises
    ConfigError, TokenUnavailable, OSError or aiosmtplib.SMTPException."""
    login = smtp_login(settings, environ)
    client = await connect(settings, login)
    try:
        tls = {"tls": "implicit TLS", "starttls": "STARTTLS", "none": "no TLS"}
        done = [f"answered EHLO, {tls[settings.smtp.security]}"]
        if login.username:
            done.append(f"logged in as {login.username} ({settings.smtp.auth})")
        else:
            done.append("no login configured")
        return ", ".join(done)
    finally:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await client.quit()


def retry_now(engine: Engine, now: datetime) -> int:
    """Make every deferred row due now (`send --once --now`, after fixing the cause); rows
    deferred again in the run that follows wait for their backoff as usual."""
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(db.Outbox)
            .where(db.Outbox.status == PENDING, db.Outbox.next_attempt_at > now)
            .values(next_attempt_at=now)
        )
    return int(getattr(result, "rowcount", 0) or 0)


def take_back(engine: Engine, now: datetime, here: holder.Holder) -> int:
    """Free the leases of senders of this machine that are gone; returns how many rows. The
    mail a killed sender was sending may have reached the server: it goes again, with the
    same Message-ID."""
    outbox, freed = db.Outbox, 0
    with Session(engine) as session, session.begin():
        names = session.scalars(
            select(outbox.claimed_by)
            .where(
                outbox.status == PENDING,
                outbox.claimed_until >= now,
                outbox.claimed_by.like(f"{here.prefix()}%"),
            )
            .distinct()
        ).all()
        for name in names:
            found = holder.parse(name or "")
            if found is None or not holder.gone(found, here):
                continue
            result = session.execute(
                update(outbox)
                .where(outbox.status == PENDING, outbox.claimed_by == name)
                .values(claim_token=None, claimed_until=None, claimed_by=None)
            )
            count = int(getattr(result, "rowcount", 0) or 0)
            log.warning("took back %d notice(s) leased by %s, a sender that is gone", count, name)
            freed += count
    return freed


def claim(
    engine: Engine, settings: Settings, now: datetime, token: str, here: holder.Holder
) -> list[Claimed]:
    """Take up to a batch of due rows for this sender until its lease runs out."""
    outbox = db.Outbox
    with Session(engine) as session, session.begin():
        ids = session.scalars(
            select(outbox.id)
            .where(
                outbox.status == PENDING,
                outbox.next_attempt_at <= whole_second(now),  # the Desk writes whole seconds
                or_(outbox.claimed_until.is_(None), outbox.claimed_until < now),
            )
            .order_by(outbox.id)
            .limit(settings.smtp.batch_size)
            .with_for_update(skip_locked=True)
        ).all()
        if not ids:
            return []
        lease = now + timedelta(seconds=settings.smtp.lease_seconds)
        session.execute(
            update(outbox)
            .where(outbox.id.in_(ids))
            .values(claim_token=token, claimed_until=lease, claimed_by=str(here))
        )
        rows = session.execute(
            select(
                outbox.id, outbox.envelope_from, outbox.recipient, outbox.letter, outbox.attempts
            )
            .where(outbox.id.in_(ids))
            .order_by(outbox.id)
        )
        return [Claimed(*row) for row in rows]


@dataclass
class _Run:
    """One sender run: its claim token, its clock, and what happened to each row."""

    settings: Settings
    engine: Engine
    clock: WallClock
    token: str
    report: SendReport = field(default_factory=SendReport)

    def unreachable(self, batch: list[Claimed], exc: BaseException) -> None:
        reason = f"SMTP server {self.settings.smtp.host} unavailable: {exc}"
        log.warning("%s; %d mail(s) deferred", reason, len(batch))
        for row in batch:
            self.defer(row, reason)

    async def send_batch(self, client: aiosmtplib.SMTP, batch: list[Claimed]) -> None:
        # Stop early enough that the lease cannot run out in the middle of a send.
        smtp = self.settings.smtp
        deadline = self.clock() + max(
            timedelta(seconds=smtp.lease_seconds - 2 * smtp.timeout), timedelta(0)
        )
        for position, row in enumerate(batch):
            if self.clock() > deadline:
                self.release(batch[position:])
                raise _ConnectionLost("lease nearly over")
            try:
                await self.send_one(client, row)
            except _ConnectionLost:
                self.release(batch[position + 1 :])
                raise

    async def send_one(self, client: aiosmtplib.SMTP, row: Claimed) -> None:
        try:
            if row.letter is None:
                raise ValueError("nothing to send: the notice failed when it was queued")
            letter = letter_from_json(row.letter)
            raw = compose(letter, enclosed(self.engine, letter))
            sender, recipient, options = await envelope(row, client)
            await client.sendmail(sender, [recipient], raw, mail_options=options)
        except aiosmtplib.SMTPNotSupported as exc:
            self.fail(row, f"{exc}: {row.recipient} is an internationalised address (RFC 6531)")
        except aiosmtplib.SMTPRecipientsRefused as exc:
            self.answer(row, exc.recipients[0].code, exc.recipients[0].message)
        except aiosmtplib.SMTPResponseException as exc:
            self.answer(row, exc.code, exc.message)
            if exc.code == 421:  # the server is closing the connection
                raise _ConnectionLost(exc.message) from exc
        except ValueError as exc:  # an address aiosmtplib will not put on the wire
            self.fail(row, str(exc))
        except (aiosmtplib.SMTPException, OSError) as exc:
            self.defer(row, f"connection lost: {exc}")
            raise _ConnectionLost(str(exc)) from exc
        else:
            _finish(self.engine, row, self.token, status=SENT, sent_at=self.clock(), error=None)
            self.report.sent += 1

    def answer(self, row: Claimed, code: int, message: str) -> None:
        """5xx: the server refuses for good. Anything else: try again later."""
        reason = f"{code} {message}".strip()
        if code >= 500:
            self.fail(row, reason)
        else:
            self.defer(row, reason)

    def fail(self, row: Claimed, reason: str) -> None:
        log.warning("outbox %d to %s failed: %s", row.id, row.recipient, reason)
        _finish(self.engine, row, self.token, status=FAILED, error=reason)
        self.report.failed += 1

    def defer(self, row: Claimed, reason: str) -> None:
        attempts = row.attempts + 1
        retry = self.clock() + backoff(self.settings, attempts)
        _finish(
            self.engine, row, self.token, attempts=attempts, next_attempt_at=retry, error=reason
        )
        self.report.deferred += 1

    def release(self, rows: list[Claimed]) -> None:
        """Give back rows that were not tried, for the next run, without counting an attempt."""
        for row in rows:
            _finish(self.engine, row, self.token)


async def envelope(row: Claimed, client: aiosmtplib.SMTP) -> tuple[str, str, list[str]]:
    """Sender, recipient and MAIL options. An internationalised domain goes in its ASCII form;
    a non-ASCII local part needs SMTPUTF8: SMTPNotSupported when the server does not offer
    it."""
    sender, recipient = ascii_domain(row.envelope_from), ascii_domain(row.recipient)
    letter = row.letter or {}
    if not needs_smtputf8(sender, recipient, *(letter.get(k, "") for k in _ADDRESSED)):
        return sender, recipient, []
    if client.last_ehlo_response is None:
        await client.ehlo()
    if not client.supports_extension("smtputf8"):
        raise aiosmtplib.SMTPNotSupported("the SMTP server does not offer SMTPUTF8")
    return sender, recipient, ["SMTPUTF8"]


_ADDRESSED = ("to_address", "from_address", "reply_to")


def enclosed(engine: Engine, letter: Letter) -> dict[str, bytes]:
    """The bytes of the letter's attachments, read when it is composed (at most the
    configured size per mail: notifications.attachments_max_bytes)."""
    wanted = {e.sha256 for e in letter.attachments}
    if not wanted:
        return {}
    with Session(engine) as session:
        rows = session.execute(
            select(db.Blob.sha256, db.Blob.content).where(db.Blob.sha256.in_(wanted))
        )
        return {row.sha256: bytes(row.content) for row in rows}


def backoff(settings: Settings, attempts: int) -> timedelta:
    """1, 2, 4, ... times retry_seconds after each failed attempt, up to retry_max_seconds."""
    smtp = settings.smtp
    seconds = smtp.retry_seconds * 2 ** min(attempts - 1, 30)
    return timedelta(seconds=min(seconds, smtp.retry_max_seconds))


def _release_run(engine: Engine, token: str) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(db.Outbox)
            .where(db.Outbox.claim_token == token, db.Outbox.status == PENDING)
            .values(claim_token=None, claimed_until=None, claimed_by=None)
        )


def _finish(engine: Engine, row: Claimed, token: str, **values: Any) -> None:
    """Record one row's fate in its own transaction, at once: the duplicate window is the
    time between the server's answer and this commit."""
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(db.Outbox)
            .where(db.Outbox.id == row.id, db.Outbox.claim_token == token)
            .values(claim_token=None, claimed_until=None, claimed_by=None, **values)
        )
    if getattr(result, "rowcount", 1) == 0:
        log.warning("outbox %d: the claim had expired; another sender may have sent it", row.id)
