"""Parsing ahead in worker processes: the same results as parsing in-process, in order, and
nothing lost when a worker fails."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailproc.inbound.parse import InboundMail, MailError, parse_mail
from mailproc.sources import parse_ahead
from tests.support.mailfactory import make_mail

ROOT = Path(__file__).parents[2]
COUNT = parse_ahead.START_AT + 3 * parse_ahead.CHUNK + 5  # a pool, and a partial last chunk


def corpus() -> list[bytes]:
    mails = [make_mail(subject=f"mail {n}", body=f"body {n} ünïcode") for n in range(COUNT)]
    mails[7] = b"no header block at all"  # unparseable: the worker returns the MailError
    mails[9] = make_mail(subject="big", body="x" * 5000)  # over the limit below: not parsed
    return mails


def test_results_equal_in_process_parsing_in_order():
    mails = corpus()
    got = list(parse_ahead.parsed_ahead(mails, lambda raw: raw, 4000, jobs=1))
    assert [item for item, _ in got] == mails
    for n, (raw, parsed) in enumerate(got):
        if n == 7:
            assert isinstance(parsed, MailError)
            with pytest.raises(MailError):
                parse_mail(raw)
        elif n == 9:
            assert parsed is None  # the Desk quarantines it unparsed
        else:
            assert isinstance(parsed, InboundMail)
            assert parsed == parse_mail(raw)  # bytes and headers restored, every field equal
            assert parsed.raw is raw


def test_few_mails_or_no_jobs_are_left_to_the_desk():
    few = corpus()[: parse_ahead.START_AT - 1]
    assert all(p is None for _, p in parse_ahead.parsed_ahead(few, lambda r: r, 10**9, jobs=1))
    many = corpus()
    assert all(p is None for _, p in parse_ahead.parsed_ahead(many, lambda r: r, 10**9, jobs=0))


def _dies_on_mail_80(raws, limits):  # runs in the forked worker
    if any(raw and b"mail 80" in raw for raw in raws):
        os._exit(3)
    return [parse_ahead._parse(raw, limits) for raw in raws]


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(),
    reason="the patch reaches forked workers only",
)
def test_a_dying_worker_loses_nothing(monkeypatch):
    monkeypatch.setattr(parse_ahead, "parse_chunk", _dies_on_mail_80)
    mails = corpus()
    got = list(parse_ahead.parsed_ahead(mails, lambda raw: raw, 10**9, jobs=1))
    assert [item for item, _ in got] == mails  # every mail once, in order
    assert isinstance(got[0][1], InboundMail)  # parsed by the worker before it died
    assert got[-1][1] is None  # after it: left to the Desk


# Holds a pool of parsing workers, prints their process ids, then waits to be killed.
HOLDER = """
import multiprocessing, sys, time
from mailproc.sources import parse_ahead
from tests.support.mailfactory import make_mail
mails = [make_mail(subject=f"mail {n}") for n in range(parse_ahead.START_AT + 40)]
stream = parse_ahead.parsed_ahead(mails, lambda raw: raw, 10**9, jobs=2)
next(stream)
print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
time.sleep(60)
"""


def test_workers_end_when_their_parent_is_killed_outright(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    assert holder.stdout is not None
    workers = [int(pid) for pid in holder.stdout.readline().split()]
    assert len(workers) == 2 and all(running(pid) for pid in workers)
    holder.kill()  # SIGKILL: no chance to shut the pool down
    holder.wait()
    deadline = time.monotonic() + 10 * parse_ahead.WATCH_SECONDS
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(running(pid) for pid in workers), "orphaned parsing workers left running"


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for init to reap it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status
