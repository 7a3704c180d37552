"""The limit line: what the standard library's parser alone does with the same files.

    python bench/limit_line.py FOLDER

Parses each file with `email.message_from_bytes(raw, policy=policy.default)`, reads the
headers mailproc reads and the text body, and nothing else. Files are read one at a time,
as `mailproc ingest` reads them.
"""

from __future__ import annotations

import email
import sys
from email import policy
from pathlib import Path

HEADERS = ("subject", "from", "to", "cc", "message-id", "in-reply-to", "references", "date")


def parse(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=policy.default)
    for name in HEADERS:
        msg.get(name)
    body = msg.get_body(preferencelist=("plain", "html"))  # type: ignore[attr-defined]
    if body is not None:
        body.get_content()


def main(folder: Path) -> int:
    count = 0
    for path in sorted(folder.iterdir()):
        parse(path.read_bytes())
        count += 1
    return count


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
