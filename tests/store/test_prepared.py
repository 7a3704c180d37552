"""Prepared statements run on the connection of the session's current transaction, never on one
remembered from an earlier transaction (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select
from sqlalchemy.orm import Session

from mailproc.store.db import make_engine
from mailproc.store.prepared import Prepared, connection_of

_TABLE = Table("numbers", MetaData(), Column("n", Integer))
_INSERT = Prepared(insert(_TABLE), keyed=True)


def _stored(engine):
    with engine.connect() as connection:
        return sorted(connection.scalars(select(_TABLE.c.n)))


def test_the_connection_is_the_transactions_own_savepoints_included(database_url):
    engine = make_engine(database_url)
    _TABLE.metadata.create_all(engine)
    with Session(engine) as session, session.begin():
        first = connection_of(session)
        assert first is session.connection()
        with session.begin_nested():
            assert connection_of(session) is first
        assert connection_of(session) is first
    engine.dispose()


def test_statements_follow_the_session_from_transaction_to_transaction(database_url):
    engine = make_engine(database_url)
    _TABLE.metadata.create_all(engine)
    with Session(engine) as session:
        with session.begin():
            _INSERT(session, n=1)
        with session.begin():
            _INSERT(session, n=2)
            assert connection_of(session) is session.connection()
            session.rollback()
        _INSERT(session, n=3)  # a transaction begun by the statement itself
        assert connection_of(session) is session.connection()
        session.commit()
        with session.begin():
            with session.begin_nested() as savepoint:
                _INSERT.many(session, [{"n": 4}, {"n": 5}])
                savepoint.rollback()
            _INSERT(session, n=6)
    assert _stored(engine) == [1, 3, 6]
    engine.dispose()


def test_a_sqlite_transaction_holds_the_write_lock_from_its_begin(tmp_path):
    """BEGIN IMMEDIATE: a transaction that reads first cannot find, when it writes, that
    another process wrote in between; the other process waits (or fails at once here)."""
    import sqlite3

    engine = make_engine(f"sqlite:///{tmp_path / 'lock.db'}")
    _TABLE.metadata.create_all(engine)
    other = sqlite3.connect(tmp_path / "lock.db", timeout=0, isolation_level=None)
    with Session(engine) as session, session.begin():
        assert session.scalars(select(_TABLE.c.n)).all() == []  # only a read so far
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    other.execute("BEGIN IMMEDIATE")  # free again once the session committed
    other.execute("ROLLBACK")
    other.close()
    engine.dispose()
