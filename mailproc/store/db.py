"""The schema (one for SQLite and PostgreSQL) and the engine factory.

Alembic owns the schema's history (mailproc/store/migrations); these models are what the code reads
and writes. Times are stored as naive UTC and handed out as aware UTC, because SQLite keeps
no time zone and comparing aware with naive datetimes is an error waiting to happen.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    insert,
)
from sqlalchemy.engine import CursorResult, make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.sql import Executable

from mailproc.store.prepared import Prepared, connection_of


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass aware UTC times")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
    }


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    service: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(64), index=True)
    priority: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(String(500))
    reporter: Mapped[str] = mapped_column(String(320), index=True)
    reporter_name: Mapped[str] = mapped_column(String(200), default="")
    assignee: Mapped[str | None] = mapped_column(String(64))
    follow_up_of: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    impact: Mapped[str | None] = mapped_column(String(32))  # None: the matrix's default
    urgency: Mapped[str | None] = mapped_column(String(32))
    # The SLA state, kept true to the history by mailproc.sla.state in every transaction that
    # changes the incident, so that readers and the escalation pass need no computation: a due
    # time is None while its clock is stopped or paused; next_escalation_at is None when no
    # escalation is pending, and the pass reads it through its index.
    response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    at_risk_at: Mapped[datetime | None]
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)
    # [MERGE INC-n]: this incident is a duplicate folded into that one; mail about it goes there
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)


# A sender's new incidents within the last hour: the per-sender rate limit counts these.
Index("ix_incidents_reporter_created", Incident.reporter, Incident.created_at)


class Event(Base):
    """One line of an incident's history: when, who, what, from which message."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]]
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))


class Message(Base):
    """Every incoming mail, under its exactly-once key, with its original bytes and fate."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(1000), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(1000))
    content_hash: Mapped[str] = mapped_column(String(64))
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(String(200), default="")
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    # What the author wrote (origin headers and body), without the trace headers servers add:
    # tells a second delivery of this mail from another mail reusing its Message-ID.
    fingerprint: Mapped[str | None] = mapped_column(String(64))


Index("ix_messages_outcome", Message.outcome, Message.id)


class ThreadRef(Base):
    """A Message-ID known to belong to an incident, incoming or sent, for reply threading."""

    __tablename__ = "thread_refs"

    message_id: Mapped[str] = mapped_column(String(1000), primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)


class Awaited(Base):
    """A mail waiting for a parent it names (mailproc.desk.waiting): one row per parent."""

    __tablename__ = "awaited"

    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    parent: Mapped[str] = mapped_column(String(1000), primary_key=True)
    until: Mapped[datetime] = mapped_column(index=True)


Index("ix_awaited_parent", Awaited.parent)


class Participant(Base):
    """Addresses that were To/Cc on an incident's mail; they may comment on it."""

    __tablename__ = "participants"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)


class Attachment(Base):
    """A file that came with an incoming mail; its bytes are the blob named by `sha256`."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    position: Mapped[int]
    filename: Mapped[str] = mapped_column(String(255))
    stored_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)


class Blob(Base):
    """Bytes, stored once under their SHA-256 whatever the number of mails that carried them.

    In the database rather than in files beside it: the bytes commit in the mail's own
    transaction (exactly once, nothing orphaned by a crash), several daemons on several
    machines share them through PostgreSQL with no shared file system, and a backup of the
    database is a backup of everything. The price, a larger database, is bounded by
    `limits.max_message_bytes` per mail and halved for repeated files (signature logos).
    """

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Problem(Base):
    __tablename__ = "problems"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    symptoms: Mapped[str] = mapped_column(Text, default="")
    workaround: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class IncidentProblem(Base):
    __tablename__ = "incident_problems"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    problem_id: Mapped[int] = mapped_column(ForeignKey("problems.id"), primary_key=True)
    at: Mapped[datetime]


Index("ix_incident_problems_problem", IncidentProblem.problem_id)


# Outbox.status: to send (or to retry), delivered, given up or never renderable, never sent on
# purpose (an undeliverable address, an open storm breaker; why is in `error`).
PENDING, SENT, FAILED, SUPPRESSED = "pending", "sent", "failed", "suppressed"
HELD = "held"  # an escalation waiting for its pass to fold it with others or let it go


class Outbox(Base):
    """One notification mail to one recipient, rendered when the change was committed, in the
    same transaction; the sender composes it, sends it and records what the server said."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # None: mail about no one incident (a query's answer, a digest, folded escalations)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(320))
    envelope_from: Mapped[str] = mapped_column(String(320))
    message_id: Mapped[str] = mapped_column(String(1000), unique=True)
    subject: Mapped[str] = mapped_column(Text)
    letter: Mapped[dict[str, Any] | None]  # notify.letter.Letter as JSON; None when it failed
    status: Mapped[str] = mapped_column(String(16))  # PENDING, SENT, FAILED, SUPPRESSED, HELD
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_by: Mapped[str | None] = mapped_column(String(200))  # mailproc.runtime.holder
    sent_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


Index("ix_outbox_due", Outbox.status, Outbox.next_attempt_at)
# The storm breaker counts recent answers, in all and per correspondent, through these.
Index("ix_outbox_kind_created", Outbox.kind, Outbox.status, Outbox.created_at)
Index("ix_outbox_recipient_created", Outbox.recipient, Outbox.created_at)


class Undeliverable(Base):
    """An address our mail bounced from, with its bounce score (mailproc.safety.undeliverable):
    suspended — no notices — while the score is at the threshold, until a probe gets through
    or an administrator clears it (`mailproc undeliverable clear`)."""

    __tablename__ = "undeliverable"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    since: Mapped[datetime]  # the first bounce of this run of bounces
    status: Mapped[str] = mapped_column(String(32))  # the last bounce's status, e.g. 5.1.1
    reason: Mapped[str] = mapped_column(Text)  # the remote server's words
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"))
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    score: Mapped[float] = mapped_column(Float, default=0.0)  # as of scored_at
    scored_at: Mapped[datetime | None]  # when a bounce last counted
    suspended_at: Mapped[datetime | None]  # None: notices go to it


class Breaker(Base):
    """The storm circuit breaker of one scope ("all" answers, or one correspondent): open
    while too many acknowledgments and transcripts went out in the last hour. The row makes
    the administrators' alert one per trip, whatever several daemons do."""

    __tablename__ = "breakers"

    scope: Mapped[str] = mapped_column(String(400), primary_key=True)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    count: Mapped[int]  # answers in the hour before it opened
    trips: Mapped[int]


class Attempt(Base):
    """A mail being handled: counted up in its own commit before the work, deleted in the
    work's commit. A row that stays means the process died on it (out of memory, killed);
    the next pass handles such a mail alone and, after enough tries, quarantines it
    (mailproc.desk.attempts)."""

    __tablename__ = "attempts"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    tries: Mapped[int]
    at: Mapped[datetime]
    owner: Mapped[str] = mapped_column(String(300))  # host:pid:start of the process in hand


class SourceState(Base):
    """Where the daemon got to in each configured source, and how its last attempt went.

    The cursor (mailbox, UIDVALIDITY, last settled UID) only saves work: the messages table's
    unique key is what makes a re-fetched mail harmless. The rest is for `mailproc status`.
    """

    __tablename__ = "source_state"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(1000), default="")
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    backlog: Mapped[int] = mapped_column(Integer, default=0)
    last_ok_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]


class Digest(Base):
    """A digest due to one address at one scheduled moment: the row claims it, so several
    daemons, or a restart, never send it twice (an empty digest gets its row, and no mail)."""

    __tablename__ = "digests"

    recipient: Mapped[str] = mapped_column(String(320), primary_key=True)
    slot: Mapped[datetime] = mapped_column(primary_key=True)  # the scheduled moment, UTC
    incidents: Mapped[int] = mapped_column(Integer, default=0)  # listed in it (0: not sent)


class Escalation(Base):
    """One escalation level mailed for one target's clock cycle. The unique key is the final
    guard that no level goes out twice, whatever several escalation passes do at once; the
    cycle is part of it so that a reopened incident (a new resolution cycle) escalates again."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("incident_id", "target", "cycle", "level", name="uq_escalations_level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"))
    target: Mapped[str] = mapped_column(String(16))
    cycle: Mapped[int]
    level: Mapped[int]
    at: Mapped[datetime]  # when it was queued
    due_at: Mapped[datetime]  # when the level's threshold was reached
    recipients: Mapped[list[str]] = mapped_column(JSON)


def run(session: Session, statement: Executable, **params: Any) -> CursorResult[Any]:
    """Execute a prebuilt statement on the session's connection, at Core speed.

    On the path that applies incoming mail, SQLAlchemy's own work per statement (building it,
    the ORM's execution pipeline) cost several times what SQLite spends running it; a statement
    built once at import, with bind parameters, executed on the connection, costs a fraction.
    """
    return connection_of(session).execute(statement, params)


# SQLite's FTS5 table of the searchable texts (migration 0014): not a model, since PostgreSQL
# has none (it indexes the events), and alembic does not know virtual tables.
SEARCH_TABLE = "events_search"
SEARCHED = 10_000  # the characters of a text that are searchable
_SEARCH = Table(
    SEARCH_TABLE,
    MetaData(),
    Column("words", Text),
    Column("incident_id", Integer),
    Column("kind", String),
    Column("actor", String),
    Column("at", UTCDateTime()),
)


class Rows:
    """Rows to insert when a unit of work is done: plain INSERTs, one executemany per table,
    parents first. For rows nobody reads back as objects the ORM's unit of work costs more
    than the database does. A Message-ID already recorded in thread_refs keeps its incident,
    and bytes already in blobs stay (the insert does nothing), so neither needs a look first."""

    ORDER = (
        "events",
        "incident_problems",
        "outbox",
        "thread_refs",
        "participants",
        "blobs",
        "attachments",
        SEARCH_TABLE,
    )
    KEEP_FIRST = frozenset({"thread_refs", "blobs"})  # a row already there stays as it is
    SQLITE_ONLY = frozenset({SEARCH_TABLE})  # PostgreSQL indexes the events themselves

    def __init__(self) -> None:
        self.pending: dict[str, list[dict[str, Any]]] = {}

    def add(self, model: type[Base], **values: Any) -> None:
        self.pending.setdefault(model.__tablename__, []).append(values)

    def discard(self, model: type[Base], **match: Any) -> None:
        """Forget pending rows of `model` with these values (added, then undone)."""
        rows = self.pending.get(model.__tablename__, [])
        rows[:] = [row for row in rows if any(row.get(k) != v for k, v in match.items())]

    def add_words(self, incident_id: int, kind: str, actor: str, at: datetime, text: str) -> None:
        """A text for `incidents search` (mailproc.store.search): its first SEARCHED
        characters, with where it comes from."""
        row = {"words": text[:SEARCHED], "incident_id": incident_id, "kind": kind}
        self.pending.setdefault(SEARCH_TABLE, []).append(row | {"actor": actor, "at": at})

    def write(self, session: Session) -> None:
        unknown = set(self.pending) - set(self.ORDER)
        assert not unknown, f"rows of unexpected tables: {unknown}"
        dialect = session.get_bind().dialect.name
        for table in self.ORDER:
            rows = self.pending.pop(table, None)
            if rows and (dialect == "sqlite" or table not in self.SQLITE_ONLY):
                _insert_of(table, dialect).many(session, rows)


@cache
def _insert_of(table: str, dialect: str) -> Prepared:
    target = _SEARCH if table == SEARCH_TABLE else Base.metadata.tables[table]
    # inline: no RETURNING of the new keys, which nobody reads here
    if table not in Rows.KEEP_FIRST:
        return Prepared(insert(target).inline(), keyed=True)
    return Prepared(insert_ignoring(dialect, target).inline(), keyed=True)


def insert_ignoring(dialect: str, table: Any) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the dialect's words; its module is imported here, so
    a process on SQLite never loads PostgreSQL's dialect (nor the other way round)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


SQLITE_TIMEOUT = 30.0  # seconds a SQLite connection waits for another process's lock


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings mailproc relies on: SQLite in WAL mode with foreign keys and
    a busy timeout (a second process must wait, not fail), its parent folder created."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_TIMEOUT}, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    # The dialect's own begin hook (Dialect.do_begin), not a "begin" event: one listener of the
    # connection events makes SQLAlchemy dispatch events around every statement, about 4 % of
    # a mail's CPU. setattr, as mypy refuses assigning to a method.
    setattr(engine.dialect, "do_begin", _begin_immediate)  # noqa: B010
    return engine


def _begin_immediate(dbapi_connection: Any) -> None:
    """Take the write lock at BEGIN: a deferred transaction that reads and then writes fails at
    once, without waiting, when another process wrote in between (WAL mode). Python's sqlite3
    begins no transaction itself here (isolation_level None, set at connect)."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN IMMEDIATE")
    finally:
        cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" event issues BEGIN itself
    cursor = dbapi_connection.cursor()
    _wal(cursor)
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _wal(cursor: Any, patience: float = SQLITE_TIMEOUT) -> None:
    """Switching a new database file to WAL needs its exclusive lock, and SQLite does not wait
    for that one (no busy handler): two processes opening a fresh file at once — two `init`s,
    an MTA delivering two mails to a new desk — would get "database is locked". Wait for it
    as long as for any other lock."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
