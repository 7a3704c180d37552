"""systemd's notification protocol (sd_notify(3)): readiness, status, the watchdog.

A few lines over the socket systemd names in NOTIFY_SOCKET, so no library is needed. Without
that variable (not under systemd, or not Type=notify) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class Notifier:
    """Tells systemd how the service is; `watchdog_interval` is how often it must be petted."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and mine else None

    def notify(self, *states: str) -> bool:
        """Send `READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`…; False when not under systemd
        or the socket is gone (never an error: the service runs on)."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(states).encode())
        except OSError:
            return False
        return True
