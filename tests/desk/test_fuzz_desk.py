"""A fuzz run through the whole Desk: random hostile mail is applied or quarantined, never
raises, and is stored; `MAILPROC_FUZZ_CASES` sets how many (tests/fuzzing.py)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings

from mailproc.config.settings import demo_settings
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.desk import FakeClock
from tests.support.fuzzing import FUZZ_CASES, mails


def test_random_hostile_mail_through_the_desk(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fuzz.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    base = demo_settings(environ={"MAILPROC_SECRET": "fuzz"})
    desk = Desk(base.model_copy(update={"database_url": url}), engine, FakeClock())
    seen: dict[Disposition, int] = dict.fromkeys(Disposition, 0)

    @settings(
        max_examples=FUZZ_CASES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(mails(sender=True))
    def apply(raw: bytes) -> None:
        outcome = desk.handle(raw)
        assert outcome.stored and outcome.key
        assert outcome.disposition in (
            Disposition.PROCESSED,
            Disposition.QUARANTINED,
            Disposition.DUPLICATE,
        )
        if outcome.disposition is Disposition.QUARANTINED:
            assert outcome.summary  # the reason
        seen[outcome.disposition] += 1

    try:
        apply()
    finally:
        engine.dispose()
    assert seen[Disposition.PROCESSED] > FUZZ_CASES // 4  # most random mail is still mail
