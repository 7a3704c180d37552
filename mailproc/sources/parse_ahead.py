"""Parse the mails of a large batch in worker processes while this one applies them.

Parsing is half of what applying a mail costs, and it needs nothing but the mail's bytes; the
Desk's work needs the database and must stay in order (a reply after the report it answers).
So on a machine with more than one core, `ingest` of many mails hands the bytes to a pool of
workers and gets `parse_mail`'s results back in the same order, a bounded window ahead of the
Desk: memory stays flat, and the Desk's transactions, claims and exactly-once guarantees are
exactly those of a mail it parsed itself. A failing worker or a broken pool only means that
the Desk parses those mails itself.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import chain, islice
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeVar

from mailproc.inbound.mime import DEFAULT_LIMITS, HeaderLimits
from mailproc.inbound.parse import InboundMail, MailError, parse_mail

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

    from mailproc.desk.outcome import Parsed

log = logging.getLogger(__name__)
T = TypeVar("T")
CHUNK = 16  # mails per round trip to a worker
WINDOW = 8  # chunks parsed ahead of the Desk at most
START_AT = 64  # fewer mails are parsed in-process: starting a pool costs more than it saves
WATCH_SECONDS = 1.0  # how often a worker checks that its parent is still there


def default_jobs() -> int:
    """The cores besides the one that applies the mail; 0 on a one-core machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(0, (cores or 1) - 1)


def parsed_ahead(
    items: Iterable[T],
    raw_of: Callable[[T], bytes],
    max_bytes: int,
    jobs: int,
    limits: HeaderLimits = DEFAULT_LIMITS,
) -> Generator[tuple[T, Parsed], None, None]:
    """Each item with `parse_mail`'s result for its bytes (None: parse it yourself), in order.
    Mails over `max_bytes` are not parsed (the Desk keeps them unparsed)."""
    source = iter(items)
    head = list(islice(source, START_AT))
    if jobs < 1 or len(head) < START_AT:
        yield from ((item, None) for item in chain(head, source))
        return
    pool = _pool(jobs)
    pending: deque[tuple[list[T], Future[list[Parsed]]]] = deque()
    chunks = _chunks(chain(head, source))
    try:
        for chunk in chunks:
            raws = [raw if len(raw := raw_of(item)) <= max_bytes else None for item in chunk]
            pending.append((chunk, _submit(pool, raws, limits)))
            while len(pending) > WINDOW:
                yield from _collect(*pending[0], raw_of)
                pending.popleft()
        while pending:
            yield from _collect(*pending[0], raw_of)
            pending.popleft()
    except _WorkerFailed as exc:  # a worker died (killed, out of memory) or a result was bad
        log.warning("a parsing worker failed (%s); parsing in-process from here", exc.__cause__)
        pool.shutdown(wait=False, cancel_futures=True)
        unparsed = chain(*(chunk for chunk, _ in pending), chain.from_iterable(chunks))
        yield from ((item, None) for item in unparsed)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pool(jobs: int) -> ProcessPoolExecutor:
    """fork: the workers start at once with the parser imported; they only parse, never touch
    the parent's database connections, sockets or threads' state, and leave with os._exit, so
    nothing inherited is closed. (Imported here: a process that stores one mail has no use for
    multiprocessing.)"""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    return ProcessPoolExecutor(
        jobs,
        mp_context=multiprocessing.get_context(method),
        initializer=_end_with,
        initargs=(os.getpid(),),
    )


def _end_with(parent: int) -> None:
    """In a worker: leave when the process it parses for is gone. A parent killed outright
    (SIGKILL, the OOM killer) cannot stop its pool, and its workers would wait on their queue
    for ever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCH_SECONDS)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _chunks(items: Iterator[T]) -> Iterator[list[T]]:
    while chunk := list(islice(items, CHUNK)):
        yield chunk


class _WorkerFailed(Exception):
    """The pool could not parse a chunk: the Desk parses it and everything after it."""


def _submit(
    pool: ProcessPoolExecutor, raws: list[bytes | None], limits: HeaderLimits
) -> Future[list[Parsed]]:
    try:
        return pool.submit(parse_chunk, raws, limits)
    except Exception as exc:  # a broken pool: its failure is the chunk's result
        from concurrent.futures import Future

        failed: Future[list[Parsed]] = Future()
        failed.set_exception(exc)
        return failed


def _collect(
    chunk: list[T], future: Future[list[Parsed]], raw_of: Callable[[T], bytes]
) -> list[tuple[T, Parsed]]:
    """The chunk's mails with their results, all or none (_WorkerFailed)."""
    try:
        results = future.result()
    except Exception as exc:
        raise _WorkerFailed from exc
    done: list[tuple[T, Parsed]] = []
    for item, result in zip(chunk, results, strict=True):
        if isinstance(result, InboundMail):  # the bytes came back as b"": attach ours
            headers = MappingProxyType(result.headers)
            result = dataclasses.replace(result, raw=raw_of(item), headers=headers)
        done.append((item, result))
    return done


def parse_chunk(raws: list[bytes | None], limits: HeaderLimits = DEFAULT_LIMITS) -> list[Parsed]:
    """In a worker: each mail parsed, without its bytes (the parent has them)."""
    return [_parse(raw, limits) for raw in raws]


def _parse(raw: bytes | None, limits: HeaderLimits) -> Parsed:
    if raw is None:
        return None
    try:
        mail = parse_mail(raw, limits)
        return dataclasses.replace(mail, raw=b"", headers=dict(mail.headers))  # picklable
    except MailError as exc:
        return exc
    except Exception:  # a parser bug: the Desk meets it again and quarantines the mail
        return None
