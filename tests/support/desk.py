"""A Desk on a fresh database (SQLite and PostgreSQL) with a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from mailproc.config.settings import Settings, demo_settings
from mailproc.desk.mail import Desk
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade


@dataclass
class FakeClock:
    now: datetime = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    base = demo_settings(environ={"MAILPROC_SECRET": "tests"})
    return base.model_copy(update={"database_url": database_url})


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def desk(settings: Settings, engine: Engine, clock: FakeClock) -> Desk:
    return Desk(settings, engine, clock)
