"""The collector around start-up: rare while a process loads, as usual once it has loaded."""

from __future__ import annotations

import gc
import subprocess
import sys
from collections.abc import Iterator

import pytest

from mailproc.runtime import heap
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.probe import bare_environment


@pytest.fixture
def collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_loading_makes_collections_rare_and_loaded_freezes_and_restores(collector):
    gc.set_threshold(*heap.RUNNING_THRESHOLDS)
    heap.loading()
    assert gc.get_threshold() == heap.LOADING_THRESHOLDS
    kept = [[] for _ in range(1000)]  # what start-up builds lives on
    heap.loaded()
    assert gc.get_threshold() == heap.RUNNING_THRESHOLDS
    assert gc.get_freeze_count() >= len(kept)


def test_loaded_without_loading_changes_nothing(collector):
    gc.set_threshold(*heap.RUNNING_THRESHOLDS)
    heap.loaded()
    assert gc.get_threshold() == heap.RUNNING_THRESHOLDS
    assert gc.get_freeze_count() == 0


def test_thresholds_set_by_someone_else_are_left_alone(collector):
    gc.set_threshold(5000, 20, 20)
    heap.loading()
    heap.loaded()
    assert gc.get_threshold() == (5000, 20, 20)


def test_an_ingest_collects_as_usual_once_it_has_loaded(tmp_path):
    """`ingest` of a folder freezes its start-up heap before the first mail (and before it
    forks parsing workers) and then collects with the default thresholds."""
    script = (
        "import gc, sys\n"
        "from mailproc.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 10_000, file=sys.stderr)\n"
    )
    (tmp_path / "mail").mkdir()
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    (tmp_path / "mailproc.toml").write_text(
        'support_address = "support@example.com"\ndefault_service = "general"\n[services.general]\n'
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "ingest", str(tmp_path / "mail")],
        capture_output=True,
        text=True,
        env=bare_environment(
            tmp_path, MAILPROC_CONFIG=str(tmp_path / "mailproc.toml"), MAILPROC_DATABASE_URL=url
        ),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.stderr.splitlines()[-1] == f"{heap.RUNNING_THRESHOLDS} True", done.stderr
