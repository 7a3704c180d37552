"""Deliver the outbox with aiosmtplib: claim due rows, send them over one connection, record
what the server said.

Rows are claimed with a lease (a token and a time) in a short transaction that picks them with
FOR UPDATE SKIP LOCKED on PostgreSQL (SQLite serialises writers anyway), so several senders
never take the same row. Each row is marked in its own transaction right after the server's
answer; the only moment a mail can go out twice is a crash between the server accepting it and
that commit (or a sender outliving its lease, which it avoids by stopping before the lease
ends). A 4xx answer or an unreachable server defers the row with a doubling backoff, so
nothing is lost; a 5xx answer for the recipient marks it failed with the server's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from ipaddress import ip_address
from typing import Any

import aiosmtplib
from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from mailproc import db
from mailproc.config import ConfigError, Settings
from mailproc.outbox import FAILED, PENDING, SENT

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    envelope_from: str
    recipient: str
    raw: bytes
    attempts: int


@dataclass
class SendReport:
    sent: int = 0
    failed: int = 0
    deferred: int = 0


class _ConnectionLost(Exception):
    """The connection is gone: what is left of the batch waits for the next run."""


def send_pending(
    settings: Settings, engine: Engine, clock: Clock, environ: Mapping[str, str] | None = None
) -> int:
    """Send what is due; returns how many mails the server accepted. For a periodic job."""
    return asyncio.run(deliver_pending(settings, engine, clock, environ)).sent


async def deliver_pending(
    settings: Settings, engine: Engine, clock: Clock, environ: Mapping[str, str] | None = None
) -> SendReport:
    password = smtp_password(settings, os.environ if environ is None else environ)
    token, report = secrets.token_hex(8), SendReport()
    client: aiosmtplib.SMTP | None = None
    try:
        while batch := claim(engine, settings, clock(), token):
            if client is None:
                try:
                    client = await _connect(settings, password)
                except (aiosmtplib.SMTPException, OSError) as exc:
                    reason = f"SMTP server {settings.smtp.host} unavailable: {exc}"
                    log.warning("%s; %d mail(s) deferred", reason, len(batch))
                    for row in batch:
                        _defer(engine, settings, row, token, clock(), reason)
                    report.deferred += len(batch)
                    break
            try:
                await _send_batch(client, batch, engine, settings, token, clock, report)
            except _ConnectionLost:
                break
    finally:
        if client is not None:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
    return report


def smtp_password(settings: Settings, environ: Mapping[str, str]) -> str | None:
    """The login password from the environment; None when no login is configured."""
    smtp = settings.smtp
    if not smtp.username:
        return None
    password = environ.get(smtp.password_env)
    if not password:
        raise ConfigError(
            f"smtp.username is set, but {smtp.password_env} is not in the environment"
        )
    if smtp.security == "none" and not _loopback(smtp.host):
        raise ConfigError(
            f"smtp.security is 'none': refusing to send the password unencrypted to {smtp.host}"
        )
    return password


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


async def _connect(settings: Settings, password: str | None) -> aiosmtplib.SMTP:
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
    if password is not None and smtp.username:
        await client.login(smtp.username, password)
    return client


def claim(engine: Engine, settings: Settings, now: datetime, token: str) -> list[Claimed]:
    """Take up to a batch of due rows for this sender until its lease runs out."""
    outbox = db.Outbox
    with Session(engine) as session, session.begin():
        ids = session.scalars(
            select(outbox.id)
            .where(
                outbox.status == PENDING,
                outbox.next_attempt_at <= now,
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
            update(outbox).where(outbox.id.in_(ids)).values(claim_token=token, claimed_until=lease)
        )
        rows = session.execute(
            select(outbox.id, outbox.envelope_from, outbox.recipient, outbox.raw, outbox.attempts)
            .where(outbox.id.in_(ids))
            .order_by(outbox.id)
        )
        return [Claimed(*row) for row in rows]


async def _send_batch(
    client: aiosmtplib.SMTP,
    batch: list[Claimed],
    engine: Engine,
    settings: Settings,
    token: str,
    clock: Clock,
    report: SendReport,
) -> None:
    # Stop early enough that the lease cannot run out in the middle of a send.
    safe = timedelta(seconds=settings.smtp.lease_seconds - 2 * settings.smtp.timeout)
    deadline = clock() + max(safe, timedelta(0))
    for position, row in enumerate(batch):
        if clock() > deadline:
            _release(engine, batch[position:], token)
            raise _ConnectionLost("lease nearly over")
        try:
            await _send_one(client, row, engine, settings, token, clock, report)
        except _ConnectionLost:
            _release(engine, batch[position + 1 :], token)
            raise


async def _send_one(
    client: aiosmtplib.SMTP,
    row: Claimed,
    engine: Engine,
    settings: Settings,
    token: str,
    clock: Clock,
    report: SendReport,
) -> None:
    try:
        await client.sendmail(row.envelope_from, [row.recipient], row.raw)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients[0]
        _answer(engine, settings, row, token, clock(), refused.code, refused.message, report)
    except aiosmtplib.SMTPResponseException as exc:
        _answer(engine, settings, row, token, clock(), exc.code, exc.message, report)
        if exc.code == 421:  # the server is closing the connection
            raise _ConnectionLost(exc.message) from exc
    except ValueError as exc:  # an address aiosmtplib will not put on the wire
        _finish(engine, row, token, status=FAILED, error=str(exc))
        report.failed += 1
    except (aiosmtplib.SMTPException, OSError) as exc:
        reason = f"connection lost: {exc}"
        _defer(engine, settings, row, token, clock(), reason)
        report.deferred += 1
        raise _ConnectionLost(reason) from exc
    else:
        _finish(engine, row, token, status=SENT, sent_at=clock(), error=None)
        report.sent += 1


def _answer(
    engine: Engine,
    settings: Settings,
    row: Claimed,
    token: str,
    now: datetime,
    code: int,
    message: str,
    report: SendReport,
) -> None:
    """5xx: the server refuses for good. Anything else: try again later."""
    reason = f"{code} {message}".strip()
    if code >= 500:
        log.warning("outbox %d to %s failed: %s", row.id, row.recipient, reason)
        _finish(engine, row, token, status=FAILED, error=reason)
        report.failed += 1
    else:
        _defer(engine, settings, row, token, now, reason)
        report.deferred += 1


def backoff(settings: Settings, attempts: int) -> timedelta:
    """1, 2, 4, ... times retry_seconds after each failed attempt, up to retry_max_seconds."""
    smtp = settings.smtp
    seconds = smtp.retry_seconds * 2 ** min(attempts - 1, 30)
    return timedelta(seconds=min(seconds, smtp.retry_max_seconds))


def _defer(
    engine: Engine, settings: Settings, row: Claimed, token: str, now: datetime, reason: str
) -> None:
    attempts = row.attempts + 1
    _finish(
        engine,
        row,
        token,
        attempts=attempts,
        next_attempt_at=now + backoff(settings, attempts),
        error=reason,
    )


def _release(engine: Engine, rows: list[Claimed], token: str) -> None:
    """Give back rows that were not tried, for the next run, without counting an attempt."""
    for row in rows:
        _finish(engine, row, token)


def _finish(engine: Engine, row: Claimed, token: str, **values: Any) -> None:
    """Record one row's fate in its own transaction, at once: the duplicate window is the
    time between the server's answer and this commit."""
    with Session(engine) as session, session.begin():
        result = session.execute(
            update(db.Outbox)
            .where(db.Outbox.id == row.id, db.Outbox.claim_token == token)
            .values(claim_token=None, claimed_until=None, **values)
        )
    if getattr(result, "rowcount", 1) == 0:
        log.warning("outbox %d: the claim had expired; another sender may have sent it", row.id)
