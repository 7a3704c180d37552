"""`mailproc`, killed by SIGKILL (as the kernel's OOM killer kills) whenever it parses a mail
that carries CRASH_HEADER: a stand-in for a mail that takes the process down.

    python tests/support/crashing.py mailproc-arguments...

The hook replaces parse_mail before any module that imports it by name is loaded, so the Desk
and the parsing workers meet it; nothing else changes.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

CRASH_HEADER = b"X-Test-Crash: kill"


def install() -> None:
    from mailproc.inbound import parse

    original = parse.parse_mail

    def parse_mail(raw: bytes, *args: object, **kwargs: object) -> parse.InboundMail:
        if CRASH_HEADER in raw:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(raw, *args, **kwargs)  # type: ignore[arg-type]

    parse.parse_mail = parse_mail  # type: ignore[assignment]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    install()
    from mailproc.cli import main

    sys.argv = ["mailproc", *sys.argv[1:]]
    main()
