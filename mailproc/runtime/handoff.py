"""The wire between a `mailproc` process and the running daemon's local sockets.

`daemon.socket`, one mail per connection: the client sends one JSON line, {"service": name or
null, "size": n}, then the n bytes of the mail; the daemon answers with one JSON line once the
mail is committed (or could not be), and closes (`offer`, `receive`, `answer`).

`daemon.command_socket`, one command per connection: the client sends one JSON line, {"argv",
"environ"}, with its stdin, stdout, stderr and folder as descriptors beside it (SCM_RIGHTS); the
server answers {"started": true} once it has taken the request, runs the command on them and
answers {"code": exit code}; or {"refused": why} when it runs nothing (`run_elsewhere`,
`command_request`). Each side checks that the other is the same user (SO_PEERCRED); a mail
goes only to a listener of a user this process trusts with it (`offer`).

It knows nothing of mail or commands, so the client's side costs the socket and json modules
and nothing else.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from contextlib import suppress
from pathlib import Path
from typing import Any

HEADER_MAX = 4096  # the JSON line before the mail
ANSWER_MAX = 1 << 16
REQUEST_MAX = 1 << 20  # a command's request: its environment is most of it
PATIENCE = 5.0  # seconds for the command server to start a command (it forks: milliseconds)


class HandoffBroken(Exception):
    """The exchange broke off after the mail was sent: its fate is unknown to the client."""


class Untrusted(Exception):
    """The listener at the path runs as a user not trusted with the mail: nothing was sent."""


def offer(
    path: Path,
    raw: bytes,
    service: str | None,
    timeout: float,
    trusted: frozenset[int] | None = None,
) -> dict[str, Any] | None:
    """The daemon's answer for this mail, or None when no daemon listens at `path` (then
    nothing was sent).

    The listener must run as a user `trusted` (default: this process's, root, or the owner of
    the socket's folder — the daemon's runtime folder): a socket that someone else left at that
    path (a world-writable folder, a path taken over) could answer "stored" and lose the mail,
    so it is not given the mail (Untrusted)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout)
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError, PermissionError):
            return None
        listener = peer_uid(client)
        if listener not in (_trusted(path) if trusted is None else trusted):
            raise Untrusted(f"its listener runs as uid {listener}, not the socket folder's owner")
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


def run_elsewhere(
    path: Path, argv: list[str], owner: int | None = None, patience: float = PATIENCE
) -> int | None:
    """Have the command server at `path` (mailproc.cli.run's `serve-commands`) run `mailproc
    ARGV` on this process's stdin, stdout and stderr, in its folder and with its environment.
    Its exit code; None when no server takes it (then nothing ran here or there).

    The server must run as `owner` (default: this process's user): the request carries the
    environment, secrets and all, and the descriptors, so a socket left at that path by anyone
    else (a world-writable folder, a stale path reused) is not talked to. A server that has not
    started the command within `patience` seconds (stopped, hung) is left: its fork finds the
    connection closed and runs nothing."""
    if not all(_is_open(fd) for fd in (0, 1, 2)):
        return None  # a closed stdin, stdout or stderr cannot be passed on
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(patience)
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError, PermissionError, TimeoutError):
            return None
        if peer_uid(client) != (os.geteuid() if owner is None else owner):
            return None
        request = json.dumps({"argv": argv, "environ": dict(os.environ)}).encode() + b"\n"
        here = os.open(".", os.O_PATH | os.O_DIRECTORY)  # the folder itself, not its name
        try:
            socket.send_fds(client, [request], [0, 1, 2, here])
            with client.makefile("rb") as reader:
                try:
                    line = reader.readline(ANSWER_MAX)  # {"started": true} or {"refused": …}
                except TimeoutError:
                    return None
                if _field(line, "started") is True:
                    client.settimeout(None)  # the command's own time
                    line = reader.readline(ANSWER_MAX)
        except OSError as exc:
            raise HandoffBroken(str(exc) or type(exc).__name__) from None
        finally:
            os.close(here)
    if not line:
        raise HandoffBroken("the command server broke off")
    code = _field(line, "code")
    return code if isinstance(code, int) else None  # refused: run it here


def _trusted(path: Path) -> frozenset[int]:
    users = {os.geteuid(), 0}
    with suppress(OSError):
        users.add(os.stat(path.parent).st_uid)
    return frozenset(users)


def _field(line: bytes, name: str) -> object:
    """`name` of the JSON object on `line`; None when there is none. HandoffBroken: garbage."""
    try:
        answer = json.loads(line)
    except ValueError:
        raise HandoffBroken("the command server broke off") from None
    return answer.get(name) if isinstance(answer, dict) else None


def command_request(conn: socket.socket) -> tuple[list[str], dict[str, str], list[int]]:
    """The server's side: argv, environment and the descriptors of a `run_elsewhere` (stdin,
    stdout, stderr and the asking process's folder). ValueError: a bad request."""
    message, fds, _, _ = socket.recv_fds(conn, REQUEST_MAX, FDS)
    with conn.makefile("rb") as reader:
        while message and not message.endswith(b"\n") and len(message) < REQUEST_MAX:
            more = reader.readline(REQUEST_MAX - len(message))
            if not more:
                break
            message += more
    try:
        request = json.loads(message)
    except ValueError:
        raise ValueError("the request is not a JSON line") from None
    argv, environ = (request.get(k) for k in ("argv", "environ"))
    if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
        raise ValueError("argv is not a list of strings")
    if not isinstance(environ, dict) or len(fds) != FDS:
        raise ValueError("the request lacks its environment or descriptors")
    return argv, {str(k): str(v) for k, v in environ.items()}, fds


FDS = 4  # stdin, stdout, stderr, the folder


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end (Linux's SO_PEERCRED); -1 where unknown."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (AttributeError, OSError):
        return -1
    return int(struct.unpack("3i", creds)[1])


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
