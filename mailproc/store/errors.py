"""A database outage, told apart from a bug: `StoreUnavailable` and the one translation to it.

Whoever meets it (the Desk, the escalation pass, the source ledger, the CLI) keeps the mail
or the work where it is and tries again later; only a bug quarantines a mail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import InterfaceError, OperationalError

OUTAGES = (OperationalError, InterfaceError)  # unreachable, dropped, or locked for too long


class StoreUnavailable(Exception):
    """The database is down or locked: a reason to retry later, never to quarantine."""


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise the database being unreachable (or locked for too long) as StoreUnavailable:
    it is not the mail's fault."""
    try:
        yield
    except OUTAGES as exc:
        raise StoreUnavailable(str(exc.orig) if exc.orig else str(exc)) from exc
