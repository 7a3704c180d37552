"""`ingest -` through the running daemon's socket, and without a daemon: the mail is stored
once either way, the pipe prints and exits as `ingest -` does, and handing over costs the pipe
no database or validation library."""

from __future__ import annotations

import os
import signal
import socket
import stat
import threading
from pathlib import Path

import pytest

from mailproc.runtime.handoff import Untrusted, _trusted, offer, run_elsewhere
from mailproc.store import db
from tests.support.daemon import DaemonProcess, count, ready_engine, toml_config, wait_until
from tests.support.mailfactory import make_mail
from tests.support.probe import offenders, probe

GARBAGE = b"this is not a mail, it has no header block\r\n"
HEAVY = ("sqlalchemy", "pydantic", "jinja2", "mailproc.desk.mail", "mailproc.config.settings")


@pytest.fixture
def setup(tmp_path: Path, sqlite_url: str, daemon_process) -> tuple[DaemonProcess, dict[str, str]]:
    """A daemon configured to listen (not started yet), and the pipe's environment."""
    engine = ready_engine(sqlite_url)
    engine.dispose()
    path = tmp_path / "ingest.sock"
    text = toml_config(sqlite_url, {}, socket=str(path), send_outbox_seconds=3600)
    daemon = daemon_process(text)
    return daemon, {"MAILPROC_CONFIG": str(daemon.config)}


def listening(daemon: DaemonProcess) -> Path:
    path = daemon.config.parent / "ingest.sock"
    daemon.start()
    wait_until(path.exists, what="the daemon's socket")
    return path


def test_the_daemon_takes_the_mail_and_the_pipe_loads_no_database(tmp_path, setup, sqlite_url):
    daemon, env = setup
    path = listening(daemon)
    mail = make_mail(subject="Printer on fire")
    done = probe(tmp_path, ["ingest", "-"], mail, **env)
    assert done.code == 0, done.stderr
    assert done.stdout == "<stdin>: created INC-1 in email\n"
    assert done.stderr.endswith("ingested: 1 processed, 0 duplicate, 0 quarantined\n")
    assert offenders(done.modules, HEAVY) == []  # the daemon applied it
    again = probe(tmp_path, ["ingest", "-"], mail, **env)
    assert "0 processed, 1 duplicate" in again.stderr
    assert count(ready_engine(sqlite_url), db.Message) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o660
    assert "ingest socket: <" in daemon.text()


def test_quarantine_and_usage_errors_are_reported_as_by_ingest(tmp_path, setup):
    daemon, env = setup
    listening(daemon)
    junk = probe(tmp_path, ["ingest", "-"], GARBAGE, **env)
    assert junk.code == 0
    assert "<stdin>: quarantined: unparseable" in junk.stderr
    wrong = probe(tmp_path, ["ingest", "--service", "nope", "-"], make_mail(), **env)
    assert wrong.code == 2 and "unknown service 'nope'" in wrong.stderr


def test_without_a_daemon_the_pipe_stores_the_mail_itself(tmp_path, setup, sqlite_url):
    daemon, env = setup
    stale = daemon.config.parent / "ingest.sock"  # a dead daemon's socket: no one listens
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))
    for path_exists in (True, False):
        if not path_exists:
            stale.unlink()
        mail = make_mail(subject=f"Report {path_exists}")
        done = probe(tmp_path, ["ingest", "-"], mail, **env)
        assert done.code == 0, done.stderr
        assert "created INC-" in done.stdout
        assert "mailproc.desk.mail" in done.modules  # applied here
    assert count(ready_engine(sqlite_url), db.Message) == 2


def test_a_second_daemon_leaves_the_socket_to_the_first(tmp_path, setup, daemon_process):
    daemon, env = setup
    path = listening(daemon)
    first = path.stat().st_ino
    second = DaemonProcess(daemon.config, tmp_path / "second.log").start()
    try:
        wait_until(lambda: "another daemon takes mail there" in second.log.read_text(), what="log")
        assert path.stat().st_ino == first
        done = probe(tmp_path, ["ingest", "-"], make_mail(), **env)
        assert done.code == 0 and "created INC-1" in done.stdout
    finally:
        second.kill()


def test_a_relative_socket_path_is_from_the_configuration_files_folder(
    tmp_path, sqlite_url, daemon_process
):
    """Daemon and pipe run from different folders and still meet at the same socket."""
    ready_engine(sqlite_url).dispose()
    daemon = daemon_process(toml_config(sqlite_url, {}, socket="ingest.sock"))
    listening(daemon)  # at the configuration file's folder, whatever the daemon's own
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = probe(elsewhere, ["--config", str(daemon.config), "ingest", "-"], make_mail())
    assert done.code == 0, done.stderr
    assert offenders(done.modules, HEAVY) == []


def test_a_socket_path_too_long_for_the_system_is_a_configuration_error(tmp_path, sqlite_url):
    config = tmp_path / "mailproc.toml"
    config.write_text(toml_config(sqlite_url, {}, socket="/run/" + "x" * 100))
    done = probe(tmp_path, ["--config", str(config), "config", "check"])
    assert done.code == 3
    assert "socket: a socket's path has at most 90 bytes" in done.stdout + done.stderr


def test_a_daemon_that_breaks_off_without_an_answer_costs_no_mail(tmp_path, setup, sqlite_url):
    """It may have stored the mail or not: the pipe stores it itself, a duplicate at worst."""
    daemon, env = setup
    path = daemon.config.parent / "ingest.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(path))
        mute.listen(1)

        def swallow() -> None:
            conn, _ = mute.accept()
            with conn:
                conn.recv(1 << 16)

        thread = threading.Thread(target=swallow)
        thread.start()
        done = probe(tmp_path, ["ingest", "-"], make_mail(), **env)
        thread.join(10)
    assert done.code == 0, done.stderr
    assert "did not answer" in done.stderr and "created INC-1" in done.stdout
    assert count(ready_engine(sqlite_url), db.Message) == 1


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str, daemon_process) -> tuple[DaemonProcess, Path]:
    """A daemon with its command server listening, one incident stored; and a configuration
    without the server, for the same commands run in their own process."""
    ready_engine(sqlite_url).dispose()
    text = toml_config(sqlite_url, {}, command_socket="commands.sock", send_outbox_seconds=3600)
    daemon = daemon_process(text)
    alone = tmp_path / "alone" / "mailproc.toml"
    alone.parent.mkdir()
    alone.write_text(text.replace('command_socket = "commands.sock"\n', ""))
    stored = probe(tmp_path, ["--config", str(alone), "ingest", "-"], make_mail(subject="Jammed"))
    assert stored.code == 0, stored.stderr
    daemon.start()
    wait_until((tmp_path / "commands.sock").exists, what="the command server's socket")
    return daemon, alone


SERVED_COMMANDS = [
    ["incidents", "show", "INC-1"],
    ["incidents", "show", "INC-9"],  # no such incident: exit 4, its message on stderr
    ["sla", "what-if", "--service", "email", "--priority", "P2", "--at", "2026-03-27T16:30Z"],
    ["--log-level", "WARNING", "incidents", "list", "--json"],
]


@pytest.mark.parametrize("args", SERVED_COMMANDS, ids=lambda a: " ".join(a))
def test_a_served_command_prints_and_exits_as_in_its_own_process(tmp_path, served, args):
    daemon, alone = served
    there = probe(tmp_path, ["--config", str(daemon.config), *args])
    here = probe(tmp_path, ["--config", str(alone), *args])
    assert (there.code, there.stdout, there.stderr) == (here.code, here.stdout, here.stderr)
    assert offenders(there.modules, HEAVY) == []  # the server ran it
    assert offenders(here.modules, HEAVY) != []


def test_commands_that_are_not_served_run_here(tmp_path, served):
    daemon, _ = served
    done = probe(tmp_path, ["--config", str(daemon.config), "ingest", "-"], make_mail())
    assert done.code == 0 and "sqlalchemy" in done.modules


def test_the_command_server_is_the_daemons_users_alone_and_ends_with_it(tmp_path, served):
    daemon, _ = served
    path = tmp_path / "commands.sock"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "quick commands are run at" in daemon.text()
    daemon.send(signal.SIGTERM)
    assert daemon.wait() == 0
    wait_until(lambda: not path.exists(), what="the command server's socket gone")
    done = probe(tmp_path, ["--config", str(daemon.config), "incidents", "show", "INC-1"])
    assert done.code == 0 and "Jammed" in done.stdout and "sqlalchemy" in done.modules


def test_a_served_command_runs_in_the_asking_process_folder(tmp_path, served):
    """The folder goes over as a descriptor: a relative path is the asker's, not the server's."""
    there = probe(tmp_path, ["--config", "mailproc.toml", "incidents", "show", "INC-1"])
    assert there.code == 0 and "Jammed" in there.stdout, there.stderr
    assert offenders(there.modules, HEAVY) == []


def test_a_stale_command_socket_leaves_the_command_to_its_own_process(tmp_path, served):
    _, alone = served
    stale = alone.parent / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(stale))  # bound, never listening: what a killed server leaves
    config = alone.with_name("stale.toml")
    served_there = '[daemon]\ncommand_socket = "stale.sock"\n'
    config.write_text(alone.read_text().replace("[daemon]\n", served_there))
    assert served_there in config.read_text()
    done = probe(tmp_path, ["--config", str(config), "incidents", "show", "INC-1"])
    assert done.code == 0 and "Jammed" in done.stdout, done.stderr
    assert "sqlalchemy" in done.modules


def test_a_command_socket_of_another_user_is_told_nothing(tmp_path):
    """The request carries the environment (secrets too) and the descriptors: a socket whose
    listener is not this user (a world-writable folder, a path taken over) gets none of it."""
    path = tmp_path / "commands.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as impostor:
        impostor.bind(str(path))
        impostor.listen(1)
        assert run_elsewhere(path, ["status"], owner=os.geteuid() + 1) is None
        conn, _ = impostor.accept()
        with conn:
            assert conn.recv(1 << 16) == b""  # closed without a byte
    assert run_elsewhere(tmp_path / "absent.sock", ["status"]) is None


def test_a_command_server_that_does_not_start_the_command_is_left_to_it(tmp_path):
    """Stopped or hung: after its patience the asking process runs the command itself, and the
    server, should it wake, finds the connection closed (so it cannot run it a second time)."""
    path = tmp_path / "commands.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
        hung.bind(str(path))
        hung.listen(1)  # never accepts in time
        assert run_elsewhere(path, ["status"], patience=0.2) is None
        conn, _ = hung.accept()
        with conn:
            assert b'"argv"' in conn.recv(1 << 20)  # the request, sent before the wait
            with pytest.raises(BrokenPipeError):  # where the fork says it starts, and stops
                conn.sendall(b'{"started": true}\n')


def test_a_mail_socket_of_a_stranger_is_not_given_the_mail(tmp_path, setup, sqlite_url):
    """A socket someone else holds at the path (a world-writable folder, a path taken over)
    could answer "stored" and lose the mail: it gets nothing, the pipe stores the mail itself."""
    daemon, env = setup
    path = daemon.config.parent / "ingest.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as impostor:
        impostor.bind(str(path))
        impostor.listen(1)
        with pytest.raises(Untrusted, match="uid"):
            offer(path, make_mail(), None, 5, trusted=frozenset({os.geteuid() + 1}))
        conn, _ = impostor.accept()
        with conn:
            assert conn.recv(1 << 16) == b""  # closed without a byte
    # the default trusts this user, root and the socket folder's owner
    assert os.geteuid() in _trusted(path) and os.stat(path.parent).st_uid in _trusted(path)
    path.unlink()
    done = probe(tmp_path, ["ingest", "-"], make_mail(), **env)
    assert done.code == 0 and "created INC-1" in done.stdout
    assert count(ready_engine(sqlite_url), db.Message) == 1
