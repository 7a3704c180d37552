"""The source_state table: each source's cursor and fate, and the verdict `mailproc status` gives.

The daemon (and `poll --once`) write here after every batch and every pass, so a monitoring
check run from cron can ask the database, not the process, whether mail is flowing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from mailproc.config.settings import Settings
from mailproc.store import db
from mailproc.store.errors import store_errors
from mailproc.store.figures import Figures, SourceRecord


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far a source's mail is settled: UIDs up to last_uid in this mailbox/UIDVALIDITY."""

    mailbox: str = ""
    uidvalidity: int | None = None
    last_uid: int = 0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    healthy: bool
    detail: str
    warning: bool = False  # unhealthy, but only a warning (monitoring's exit 1, not 2)

    @property
    def state(self) -> str:
        return "ok" if self.healthy else "warning" if self.warning else "critical"


class Ledger:
    """Short transactions on source_state; a database outage surfaces as StoreUnavailable."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine, self.clock = engine, clock

    def cursor(self, source: str) -> Cursor:
        with self._session() as session:
            row = session.get(db.SourceState, source)
            if row is None:
                return Cursor()
            return Cursor(row.mailbox, row.uidvalidity, row.last_uid)

    def record(self, source: str, cursor: Cursor, backlog: int, ok: bool = False) -> None:
        """Save the cursor and the backlog; `ok`: and that a pass just succeeded."""
        with self._session() as session, session.begin():
            row = _row(session, source)
            row.mailbox, row.uidvalidity = cursor.mailbox, cursor.uidvalidity
            row.last_uid, row.backlog = cursor.last_uid, backlog
            if ok:
                row.last_ok_at = self.clock()

    def failed(self, source: str, reason: str) -> None:
        with self._session() as session, session.begin():
            row = _row(session, source)
            row.last_error, row.last_error_at = reason[:2000], self.clock()

    def records(self) -> dict[str, SourceRecord]:
        with self._session() as session:
            return {
                row.source: SourceRecord(
                    row.backlog, row.last_ok_at, row.last_error, row.last_error_at
                )
                for row in session.scalars(select(db.SourceState))
            }

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with store_errors(), Session(self.engine) as session:
            yield session


def _row(session: Session, source: str) -> db.SourceState:
    row = session.get(db.SourceState, source)
    if row is None:
        row = db.SourceState(source=source, mailbox="", last_uid=0, backlog=0)
        session.add(row)
    return row


def status_checks(settings: Settings, figures: Figures) -> list[Check]:
    """What `mailproc status` judges: the parts this deployment has. Sources only when
    [sources.*] are configured (a pipe or cron `ingest` set-up has none: its intake is
    reported, not judged); the outbox always."""
    max_age = settings.daemon.status_max_age_seconds
    checks = source_checks(list(settings.sources), figures.sources, figures.now, max_age)
    if not settings.sources:
        checks.append(_intake(figures))
    checks.append(outbox_check(figures, max_age))
    return checks


def _intake(figures: Figures) -> Check:
    last = figures.age(figures.last_received_at)
    when = "no mail stored yet" if last is None else f"last mail stored {last:.0f}s ago"
    return Check("intake", True, f"by `mailproc ingest` (no [sources.*]); {when}")


def outbox_check(figures: Figures, max_age: float) -> Check:
    """Notifications waiting; unhealthy when one has been due for longer than max_age, which
    means no sender is running (a deferred one is due only at its next attempt)."""
    pending, failed = figures.notices.get("pending", 0), figures.notices.get("failed", 0)
    detail = f"{pending} waiting, {failed} failed"
    overdue = figures.age(figures.oldest_due_at) or 0.0
    if overdue > max_age:
        return Check("outbox", False, f"{detail}; one has been due for {overdue:.0f}s")
    return Check("outbox", True, detail)


def source_checks(
    names: list[str], records: Mapping[str, SourceRecord], now: datetime, max_age: float
) -> list[Check]:
    """Healthy: polled successfully within max_age seconds and not failing since."""
    return [_check(name, records.get(name), now, max_age) for name in names]


def _check(name: str, record: SourceRecord | None, now: datetime, max_age: float) -> Check:
    if record is None or record.last_ok_at is None:
        error = f": {record.last_error}" if record and record.last_error else ""
        return Check(name, False, f"never polled successfully{error}")
    age = (now - record.last_ok_at).total_seconds()
    backlog = f"backlog {record.backlog}"
    if record.last_error_at is not None and record.last_error_at > record.last_ok_at:
        failing = (now - record.last_error_at).total_seconds()
        return Check(
            name,
            False,
            f"failing: {record.last_error} ({failing:.0f}s ago; last success {age:.0f}s ago; "
            f"{backlog})",
            warning=age <= max_age,  # mail still flowed recently: not yet critical
        )
    if age > max_age:
        return Check(
            name, False, f"last successful poll {age:.0f}s ago (limit {max_age:g}s); {backlog}"
        )
    return Check(name, True, f"last poll {age:.0f}s ago, {backlog}")
