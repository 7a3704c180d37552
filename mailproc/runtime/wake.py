"""A flag that ends any wait at once: a sleep, a backoff, or a poll() on an IMAP socket.

Set from a signal handler or another thread. It is a pipe rather than a threading.Event
because a signal handler must not take locks, and because IDLE waits in poll() on the IMAP
socket, which the pipe can join.
"""

from __future__ import annotations

import os
import select
from contextlib import suppress


class Wake:
    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._set = False

    def set(self) -> None:
        """Safe in a signal handler: no locks, one non-blocking write."""
        self._set = True
        with suppress(OSError):  # full: it is readable already
            os.write(self._write, b"!")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float | None) -> bool:
        """Sleep until set or until `timeout` seconds passed; return whether it is set."""
        if not self._set:
            select.select([self._read], [], [], timeout)
        return self._set

    def clear(self) -> None:
        self._set = False
        try:
            while os.read(self._read, 512):
                pass
        except BlockingIOError:
            pass

    def fileno(self) -> int:
        return self._read

    def close(self) -> None:
        """Only once no thread can set or wait on it any more (a closed number is reused)."""
        os.close(self._read)
        os.close(self._write)
