"""`run` (the daemon), `poll --once` (one pass, for cron), `status` (for monitoring), and the
daemon's command server."""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil
import select
import signal
import socket
import sys
import time
import traceback
from contextlib import suppress
from pathlib import Path
from typing import Any, NoReturn

import click

from mailproc.cli.app import App, fail, pass_app
from mailproc.cli.output import echo_json, json_option
from mailproc.clock import utcnow
from mailproc.config.settings import load_settings
from mailproc.runtime import handoff
from mailproc.sources.health import Check, status_checks
from mailproc.store.errors import StoreUnavailable
from mailproc.store.figures import Figures

EXIT_UNHEALTHY = 1
log = logging.getLogger(__name__)


@click.command()
@pass_app
def run(app: App) -> None:
    """Run the daemon: every configured source, IDLE or polling, and the periodic jobs.

    SIGTERM or SIGINT finish the mail in hand, then exit 0; SIGHUP reloads the configuration.
    """
    # The daemon's modules here, not at the top: `status` shares this module and needs none.
    from mailproc.daemon.loop import Daemon
    from mailproc.runtime.progress import progress_factory

    daemon = Daemon(
        lambda: load_settings(app.config_path),
        os.environ,
        progress=progress_factory(terminal=sys.stderr.isatty()),
    )
    daemon.install_signal_handlers()
    daemon.run()


@click.command()
@click.option("--once", is_flag=True, help="One pass over the sources, then exit (for cron).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Shadow mode: report what would happen; store, move and send nothing.",
)
@click.option("--source", "names", multiple=True, help="Only this source (repeatable).")
@json_option
@pass_app
def poll(app: App, once: bool, dry_run: bool, names: tuple[str, ...], as_json: bool) -> None:
    """Fetch and process waiting mail from the configured sources once.

    The exit code is 1 when a source could not be read or the database could not be reached.
    """
    if not once:
        raise click.UsageError("poll needs --once; the long-running daemon is `mailproc run`")
    unknown = sorted(set(names) - set(app.settings.sources))
    if unknown:
        raise click.BadParameter(f"unknown source {unknown[0]!r}", param_hint="--source")
    if not app.settings.sources:
        fail("no mail sources configured ([sources.*] in the configuration)")
    from mailproc.daemon.loop import poll_once
    from mailproc.runtime.progress import progress_factory
    from mailproc.runtime.wake import Wake

    stop = Wake()
    before = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        results = poll_once(
            app.settings,
            os.environ,
            names,
            dry_run=dry_run,
            stop=stop,
            progress=progress_factory(terminal=sys.stderr.isatty()),
        )
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        stop.close()
    if as_json:
        echo_json({"dry_run": dry_run, "sources": results})
    for result in results if not as_json else ():
        click.echo(f"{result.source}: {result.text}")
    if not all(result.ok for result in results):
        sys.exit(EXIT_UNHEALTHY)


@click.command()
@json_option
@pass_app
def status(app: App, as_json: bool) -> None:
    """Is mail flowing? For monitoring: exit 0 OK, 1 WARNING, 2 CRITICAL (3: configuration).

    Reads what the daemon, `poll --once`, `ingest` and `send --once` recorded in the database:
    each configured source's last successful poll and backlog (a pipe or cron `ingest` set-up
    has none: its last stored mail is shown), the outbox's waiting and failed notices. The
    first line is the verdict (with performance data), then one line per check.
    """
    checks, data = _status(app)
    worst = max((_STATES.index(c.state) for c in checks), default=0)
    data = {"state": _STATES[worst], "exit_code": worst, "checks": checks, **data}
    if as_json:
        echo_json(data)
    else:
        bad = [c.name for c in checks if not c.healthy]
        verdict = f"mailproc {_STATES[worst].upper()}{': ' if bad else ''}{', '.join(bad)}"
        click.echo(f"{verdict} | {_perfdata(data)}" if "outbox" in data else verdict)
        for check in checks:
            click.echo(f"{check.name}: {check.state.upper()} {check.detail}")
    sys.exit(worst)


_STATES = ("ok", "warning", "critical")


def _status(app: App) -> tuple[list[Check], dict[str, Any]]:
    from sqlalchemy.exc import SQLAlchemyError

    from mailproc.store.figures import figures
    from mailproc.store.schema import SchemaOutdated

    try:
        found = figures(app.ready_engine(), utcnow())
    except (SQLAlchemyError, SchemaOutdated, StoreUnavailable) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return [Check("database", False, f"{app.database}: {reason}")], {}
    return status_checks(app.settings, found), _numbers(found)


def _numbers(found: Figures) -> dict[str, Any]:
    services = found.services.values()
    return {
        "sources": {
            name: {
                "backlog": record.backlog,
                "last_ok_at": record.last_ok_at,
                "last_ok_age_seconds": found.age(record.last_ok_at),
                "last_error": record.last_error,
                "last_error_at": record.last_error_at,
            }
            for name, record in found.sources.items()
        },
        "mail": {
            "stored": found.messages,
            "last_received_at": found.last_received_at,
            "last_received_age_seconds": found.age(found.last_received_at),
        },
        "outbox": {
            **{status: found.notices.get(status, 0) for status in _NOTICE_STATES},
            "oldest_due_age_seconds": found.age(found.oldest_due_at),
        },
        "incidents": {
            "open": sum(s.open for s in services),
            "at_risk": sum(s.at_risk for s in services),
            "breached": sum(s.breached for s in services),
            "by_service": found.services,
        },
        "breakers_open": found.open_breakers,
    }


_NOTICE_STATES = ("pending", "failed", "suppressed", "sent")


def _perfdata(data: dict[str, Any]) -> str:
    """Nagios performance data: label=value pairs after the verdict's '|'."""
    backlog = sum(s["backlog"] for s in data["sources"].values())
    outbox = data["outbox"]
    oldest = outbox["oldest_due_age_seconds"] or 0
    return (
        f"backlog={backlog} outbox_pending={outbox['pending']} outbox_failed={outbox['failed']} "
        f"outbox_oldest_due={oldest:.0f}s open={data['incidents']['open']}"
    )


@click.command("serve-commands", hidden=True)
@click.argument("socket_path", type=click.Path(path_type=Path))
@click.argument("parent", type=int)
@pass_app
def serve_commands(app: App, socket_path: Path, parent: int) -> None:
    """Run quick commands for the daemon's user in forks of a warm process (`run` starts it).

    `mailproc status`, `incidents show`, `sla what-if` and the like do a few milliseconds of work
    behind hundreds of milliseconds of imports and start-up. With `daemon.command_socket` set,
    the daemon starts this process: it imports mailproc's modules once, listens, and forks for
    each request. The child takes over the asking process's stdin, stdout and stderr (passed
    over the socket), its folder, environment and arguments, runs the command as `mailproc`
    would, and answers with the exit code; the asking process (`main` in mailproc.cli) prints
    nothing itself. Single-threaded, so a fork inherits no lock another thread holds. Only the
    daemon's own user may ask (the socket is 0600 and the peer's uid is checked): a command runs
    with this process's rights. It ends when the daemon does.
    """
    from mailproc.daemon.listener import bound
    from mailproc.runtime import heap

    _warm(app)
    heap.loaded()  # before the forks: they share its pages
    server = bound(socket_path, 0o600)
    if server is None:
        return
    inode = socket_path.stat().st_ino
    signal.signal(signal.SIGTERM, _leave)
    signal.signal(signal.SIGCHLD, _reap)
    try:
        while os.getppid() == parent:
            ready, _, _ = select.select([server], [], [], 1.0)
            if ready:
                conn, _ = server.accept()
                if os.fork() == 0:
                    server.close()
                    _command(conn)
                conn.close()
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        server.close()
        with suppress(OSError):
            if socket_path.stat().st_ino == inode:
                socket_path.unlink()


def _warm(app: App) -> None:
    """Every module a command may import, the configuration's holiday tables and the database
    driver: what each command would load, loaded once for all of them."""
    import mailproc
    from mailproc.sla.clocks import policy_from_settings

    for module in pkgutil.walk_packages(mailproc.__path__, "mailproc."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    from mailproc.store.db import make_engine

    policy_from_settings(app.settings)
    make_engine(app.settings.database_url).dispose()  # its dialect and driver, no connection


def _leave(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _reap(_signum: int, _frame: object) -> None:
    """Collect the ended forks, each with a debug line of what it cost."""
    with suppress(ChildProcessError):
        while True:
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if not pid:
                return
            log.debug(
                "command server: fork %d ended with %d after %.1f ms of CPU",
                pid,
                os.waitstatus_to_exitcode(status),
                (usage.ru_utime + usage.ru_stime) * 1000,
            )


def _command(conn: socket.socket) -> NoReturn:
    """In the fork: run one command on the asking process's descriptors, answer its code. A
    request it cannot take (another user, a bad request, a folder it cannot enter) is refused
    before anything runs, and the asking process runs the command itself."""
    code = 70  # EX_SOFTWARE, should anything here fail
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        if handoff.peer_uid(conn) != os.geteuid():
            _refuse(conn, "only the daemon's user may run commands here")
        try:
            argv, environ, fds = handoff.command_request(conn)
            os.fchdir(fds[3])
        except (ValueError, OSError) as exc:
            _refuse(conn, str(exc))
        try:
            handoff.answer(conn, started=True)
        except OSError:  # the asking process gave up waiting and runs the command itself
            os._exit(0)
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        os.environ.clear()
        os.environ.update(environ)
        time.tzset()
        code = _run(argv)
    except BaseException:
        traceback.print_exc()
    finally:
        with suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        with suppress(OSError):
            handoff.answer(conn, code=code)
        os._exit(code)


def _refuse(conn: socket.socket, why: str) -> NoReturn:
    with suppress(OSError):
        handoff.answer(conn, refused=why)
    os._exit(0)


def _run(argv: list[str]) -> int:
    from mailproc.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            click.echo(exc.code, err=True)
            return 1
        return exc.code or 0
    return 0
