"""Statements compiled once per database dialect and run through the driver directly.

On the path that applies incoming mail, SQLAlchemy's own work for each execution (the cache
key, setting up parameter and result processing) cost as much as the database's work for
the statement, for every one of the ten or so statements a mail needs. A `Prepared`
statement is compiled on first use for the dialect at hand, keeps its SQL text and its
parameters' bind processors (so time zones, JSON and binary values are converted exactly as
SQLAlchemy would), and hands the driver plain tuples or dicts.

Only for statements whose results need no type conversion: INSERT and UPDATE (RETURNING an
integer key at most) and SELECTs of strings and integers. Everything else uses SQLAlchemy as
usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Dialect, bindparam
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    order: tuple[str, ...] | None  # parameter names in position order; None: named style
    processors: Mapping[str, Callable[[Any], Any]]
    fixed: Mapping[str, Any]  # the values the statement holds itself (a constant compared)

    def params(self, values: Mapping[str, Any]) -> Sequence[Any] | dict[str, Any]:
        convert = self.processors
        if self.fixed:
            values = {**self.fixed, **values}
        if self.order is None:
            return {k: convert[k](v) if k in convert else v for k, v in values.items()}
        return tuple(
            convert[name](values[name]) if name in convert else values[name] for name in self.order
        )


def _compile(statement: ClauseElement, dialect: Dialect, keys: Iterable[str] | None) -> _Compiled:
    compiled = statement.compile(
        dialect=dialect, column_keys=list(keys) if keys is not None else None
    )
    assert isinstance(compiled, SQLCompiler)
    processors, fixed = {}, {}
    for name, bind in compiled.binds.items():
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[name] = processor
        if not bind.required and bind.value is not None:
            fixed[name] = bind.effective_value
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    return _Compiled(compiled.string, order, processors, fixed)


def connection_of(session: Session) -> Connection:
    """`session.connection()`, remembered for the session's current root transaction.

    The ORM looks the connection up through its transaction's state checks on every call,
    which on the path of a mail cost more than some of the statements run on it; within one
    root transaction (savepoints included) it is always the same connection, so it is kept in
    `session.info` beside the transaction it belongs to and asked for again only when that
    transaction has ended."""
    transaction = session.get_transaction()
    known = session.info.get(_CONNECTION)
    if transaction is not None and known is not None and known[0] is transaction:
        return known[1]  # type: ignore[no-any-return]
    connection = session.connection()  # begins a transaction when there is none
    session.info[_CONNECTION] = (session.get_transaction(), connection)
    return connection


_CONNECTION = "mailproc.connection"


class Prepared:
    """One statement; `keyed`: an INSERT without values, compiled per set of columns given."""

    def __init__(self, statement: ClauseElement, keyed: bool = False) -> None:
        self.statement, self.keyed = statement, keyed
        self._compiled: dict[tuple[str, frozenset[str] | None], _Compiled] = {}

    def _for(self, dialect: Dialect, keys: Iterable[str]) -> _Compiled:
        wanted = frozenset(keys) if self.keyed else None
        found = self._compiled.get((dialect.name, wanted))
        if found is None:
            found = _compile(self.statement, dialect, wanted)
            self._compiled[(dialect.name, wanted)] = found
        return found

    def __call__(self, session: Session, **values: Any) -> CursorResult[Any]:
        connection = connection_of(session)
        compiled = self._for(connection.dialect, values)
        return connection.exec_driver_sql(compiled.sql, compiled.params(values))

    def many(self, session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
        """One executemany; every row must have the same columns as the first."""
        connection = connection_of(session)
        compiled = self._for(connection.dialect, rows[0])
        connection.exec_driver_sql(compiled.sql, [compiled.params(row) for row in rows])


def fixed_list(name: str, count: int) -> list[BindParameter[Any]]:
    """`count` parameters name0, name1, … for an IN of that many values: a `Prepared`
    statement has no list parameter that expands at each execution (that expansion costs
    SQLAlchemy about as much again as the rest of the statement), so keep one per count."""
    return [bindparam(f"{name}{n}") for n in range(count)]


def fixed_values(name: str, values: Sequence[Any]) -> dict[str, Any]:
    """The values for `fixed_list(name, len(values))`."""
    return {f"{name}{n}": value for n, value in enumerate(values)}
