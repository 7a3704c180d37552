"""The cost of recomputing an incident's due times and escalation plan, per incident.

    .venv/bin/python bench/sla_calc.py            # default 2,000 rounds per timeline
    .venv/bin/python bench/sla_calc.py --rounds 500

Runs sla.compute (due times, standings, explanation steps) and escalation.plan (levels due,
next escalation time) on typical timelines, with the embedded default configuration (an office
calendar in Europe/Prague with Czech holidays; a 24×7 service). "warm" reuses the policy, as a
daemon does, so each calendar remembers the days it has seen; "cold" builds a fresh policy for
every incident first (the worst case: every day's intervals computed anew; policy build time
excluded). Prints microseconds per incident (median of 5 runs) and the cold/warm ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailproc.config.settings import demo_settings  # noqa: E402
from mailproc.sla.clocks import (  # noqa: E402
    Acknowledged,
    Created,
    Fact,
    Moved,
    Policy,
    PriorityChanged,
    Responded,
    StatusChanged,
    compute,
    policy_from_settings,
)
from mailproc.sla.ladder import plan  # noqa: E402
from mailproc.vocabulary import Priority, StatusKind  # noqa: E402

START = datetime(2026, 3, 26, 14, 0, tzinfo=UTC)  # a Thursday afternoon before the DST change
H = timedelta(hours=1)


def timelines() -> dict[str, tuple[list[Fact], datetime]]:
    """name -> (timeline, now)."""
    s = START
    waiting = StatusChanged(s + 3 * H, "Waiting", StatusKind.OPEN, paused=True)
    working = StatusChanged(s + 20 * H, "Solution", StatusKind.OPEN)
    long_pauses: list[Fact] = []
    for day in range(1, 30, 5):
        at = s + timedelta(days=day)
        long_pauses += [
            StatusChanged(at, "Waiting", StatusKind.OPEN, paused=True),
            StatusChanged(at + 30 * H, "Solution", StatusKind.OPEN),
        ]
    return {
        "new incident, office calendar": ([Created(s, "email", Priority.P3)], s + H),
        "new incident, 24x7": ([Created(s, "network", Priority.P1)], s + H),
        "assigned, reprioritised, paused and resumed": (
            [
                Created(s, "email", Priority.P3),
                Responded(s + H),
                PriorityChanged(s + 2 * H, Priority.P2),
                waiting,
                working,
                Acknowledged(s + 21 * H),
            ],
            s + 22 * H,
        ),
        "moved to 24x7, resolved, reopened": (
            [
                Created(s, "email", Priority.P2),
                Moved(s + 2 * H, "network"),
                StatusChanged(s + 5 * H, "Resolved", StatusKind.RESOLVED),
                StatusChanged(s + 30 * H, "New", StatusKind.OPEN),
            ],
            s + 31 * H,
        ),
        "open 30 days, six pauses": (
            [Created(s, "email", Priority.P4), Responded(s + H), *long_pauses],
            s + timedelta(days=31),
        ),
    }


def per_incident(work: Callable[[Policy], object], policies: Callable[[], list[Policy]]) -> float:
    """Median microseconds per call over 5 runs, one call per policy `policies()` gives."""
    runs = []
    for _ in range(5):
        batch = policies()
        began = time.perf_counter()
        for policy in batch:
            work(policy)
        runs.append((time.perf_counter() - began) / len(batch) * 1e6)
    return statistics.median(runs)


def recompute(timeline: list[Fact], now: datetime, policy: Policy) -> object:
    status = compute(timeline, policy, now)
    return plan(status, policy.of(status.service).ladder, (), now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    settings = demo_settings(environ={})
    warm = policy_from_settings(settings)
    cold_rounds = max(1, args.rounds // 20)
    print(f"{'timeline':<45} {'facts':>5} {'warm µs':>9} {'cold µs':>9} {'cold/warm':>9}")
    for name, (timeline, now) in timelines().items():
        work = partial(recompute, timeline, now)
        warm_us = per_incident(work, lambda: [warm] * args.rounds)
        cold_us = per_incident(
            work, lambda: [policy_from_settings(settings) for _ in range(cold_rounds)]
        )
        print(
            f"{name:<45} {len(timeline):>5} {warm_us:>9.1f} {cold_us:>9.1f} "
            f"{cold_us / warm_us:>8.1f}x"
        )


if __name__ == "__main__":
    main()
