"""The cyclic garbage collector around start-up.

A mailproc process builds a large heap of objects that live as long as it does (modules,
SQLAlchemy's mappers and compiled statements, validated settings, compiled templates) and then
does short pieces of work per mail. With the collector's defaults, loading that heap runs a
full collection each time it grows by a quarter: about 80 ms of an `ingest`'s 450 ms start-up,
spent proving that none of it is garbage; and every later full collection walks all of it
again. So a process collects rarely while it loads (`loading`), and once loaded moves what it
built out of the collector's sight (`loaded`: gc.freeze, which also keeps the pages of a
forked worker shared). A process that never calls `loaded` still collects, only less often.
"""

from __future__ import annotations

import gc

__all__ = ["loaded", "loading"]

LOADING_THRESHOLDS = (100_000, 100, 100)  # start-up allocates ~130,000 containers: one young pass
RUNNING_THRESHOLDS = (700, 10, 10)  # CPython's defaults


def loading() -> None:
    """Collect rarely until `loaded`: what start-up allocates lives as long as the process."""
    if gc.get_threshold() == RUNNING_THRESHOLDS:
        gc.set_threshold(*LOADING_THRESHOLDS)


def loaded() -> None:
    """Start-up is over: freeze what it built and collect as usual from here on."""
    if gc.get_threshold() == LOADING_THRESHOLDS:
        gc.freeze()
        gc.set_threshold(*RUNNING_THRESHOLDS)
