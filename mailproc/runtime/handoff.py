"""The wire between `mailproc ingest -` and a running daemon's local socket (`daemon.socket`).

One mail per connection. The client sends one JSON line, {"service": name or null, "size": n},
then the n bytes of the mail; the daemon answers with one JSON line once the mail is committed
(or could not be), and closes. It knows nothing of mail but its bytes, so the client's side
(`offer`) costs the socket and json modules and nothing else.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

HEADER_MAX = 4096  # the JSON line before the mail
ANSWER_MAX = 1 << 16


class HandoffBroken(Exception):
    """The exchange broke off after the mail was sent: its fate is unknown to the client."""


def offer(path: Path, raw: bytes, service: str | None, timeout: float) -> dict[str, Any] | None:
    """The daemon's answer for this mail, or None when no daemon listens at `path` (then
    nothing was sent)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError, PermissionError):
            return None
        try:
            header = json.dumps({"service": service, "size": len(raw)}).encode()
            client.sendall(header + b"\n" + raw)
            with client.makefile("rb") as reader:
                line = reader.readline(ANSWER_MAX)
        except OSError as exc:
            raise HandoffBroken(str(exc) or type(exc).__name__) from None
    try:
        answer = json.loads(line)
    except ValueError:
        raise HandoffBroken("no answer from the daemon") from None
    if not isinstance(answer, dict):
        raise HandoffBroken("the daemon's answer is not an object")
    return answer


def receive(conn: socket.socket, max_size: int) -> tuple[str | None, bytes]:
    """The daemon's side: the service asked for and the mail. ValueError: a bad request;
    EOFError: the connection closed before a request."""
    with conn.makefile("rb") as reader:
        line = reader.readline(HEADER_MAX)
        if not line:
            raise EOFError
        try:
            header = json.loads(line)
        except ValueError:
            raise ValueError("the request does not start with a JSON line") from None
        size = header.get("size") if isinstance(header, dict) else None
        service = header.get("service") if isinstance(header, dict) else None
        if not isinstance(size, int) or size < 0:
            raise ValueError("the request has no size")
        if service is not None and not isinstance(service, str):
            raise ValueError("the service is not a name")
        if size > max_size:
            raise ValueError(f"{size} bytes, more than this socket takes ({max_size})")
        raw = reader.read(size)
    if len(raw) != size:
        raise ValueError(f"{len(raw)} of {size} bytes arrived")
    return service, raw


def answer(conn: socket.socket, **fields: Any) -> None:
    conn.sendall(json.dumps(fields).encode() + b"\n")
