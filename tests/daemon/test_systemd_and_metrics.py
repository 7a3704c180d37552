"""The daemon under systemd (Type=notify: READY after each source's first pass, the watchdog
petted from its loop, STOPPING at the end) and its metrics endpoint, which Prometheus' own
parser reads; `mailproc metrics` prints the same."""

from __future__ import annotations

import mailbox
import socket
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clirunner import demo_cli
from tests.support.daemon import ENV, make_settings, ready_engine, running, wait_until
from tests.support.mailfactory import make_mail
from tests.support.servers import free_port


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.1)
    said: list[str] = []

    def heard() -> list[str]:
        while True:
            try:
                said.extend(sock.recv(4096).decode().split("\n"))
            except TimeoutError:
                return said

    yield str(path), heard
    sock.close()


def metrics_of(text: str) -> dict[str, float]:
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}"] = sample.value
    return values


def test_ready_after_the_first_pass_the_watchdog_petted_and_metrics_served(
    tmp_path, notify_socket, sqlite_url
):
    path, heard = notify_socket
    maildir = mailbox.Maildir(tmp_path / "Maildir", create=True)
    maildir.add(make_mail(subject="Printer on fire"))
    port = free_port()
    settings = make_settings(
        sqlite_url,
        {"local": {"kind": "maildir", "path": str(tmp_path / "Maildir"), "poll_seconds": 0.2}},
        metrics_listen=f"127.0.0.1:{port}",
    )
    ready_engine(sqlite_url).dispose()
    environ = {**ENV, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
    with running(settings, environ):
        wait_until(lambda: "READY=1" in heard(), what="READY=1")
        wait_until(lambda: heard().count("WATCHDOG=1") >= 3, what="the watchdog petted")
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    assert "STOPPING=1" in heard()
    ready = heard().index("READY=1")
    assert heard()[ready + 1] == "STATUS=serving 1 mail source(s)"
    values = metrics_of(text.decode())
    assert values["mailproc_database_up{}"] == 1
    assert values["mailproc_mails_total{outcome=processed}"] == 1
    assert values["mailproc_incidents_open{service=email}"] == 1
    assert values["mailproc_source_up{source=local}"] == 1
    assert values["mailproc_source_backlog{source=local}"] == 0
    assert values["mailproc_notices{status=pending}"] == 2


def test_mailproc_metrics_prints_what_prometheus_parses(tmp_path, monkeypatch, database_url):
    run = demo_cli(monkeypatch, tmp_path, database_url)
    run("ingest", "-", input=make_mail())
    run("ingest", "-", input=b"\x00 not a mail")
    values = metrics_of(run("metrics").stdout)
    assert values["mailproc_mails_total{outcome=processed}"] == 1
    assert values["mailproc_mails_total{outcome=quarantined}"] == 1
    assert values["mailproc_notices{status=pending}"] == 2
    assert values["mailproc_outbox_oldest_due_age_seconds{}"] >= 0
    assert values["mailproc_incidents_open{service=network}"] == 0
    assert values["mailproc_breakers_open{}"] == 0
    assert not any(name.startswith("mailproc_source") for name in values)  # no sources


def test_without_systemd_nothing_is_sent_and_nothing_fails():
    from mailproc.runtime.sdnotify import Notifier

    assert Notifier({}).notify("READY=1") is False
    assert Notifier({"NOTIFY_SOCKET": "/nonexistent/socket"}).notify("READY=1") is False
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval == 15


def test_a_reload_moves_the_metrics_endpoint_and_keeps_it_when_the_new_port_is_taken(
    sqlite_url, caplog
):
    first, second = free_port(), free_port()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    settings = [
        make_settings(sqlite_url, {}, metrics_listen=f"127.0.0.1:{port}")
        for port in (first, second, taken.getsockname()[1])
    ]
    ready_engine(sqlite_url).dispose()
    loads = iter(settings[1:])

    def scrape(port: int) -> str:
        return (
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        )

    with running(settings[0]) as daemon:
        assert "mailproc_database_up 1.0" in scrape(first)
        daemon._load = lambda: next(loads)  # type: ignore[method-assign]
        daemon.reload()
        wait_until(lambda: daemon.runtime and daemon.runtime.settings is settings[1], what="reload")
        wait_until(lambda: "mailproc_database_up" in scrape(second), what="the new endpoint")
        with pytest.raises(OSError):
            scrape(first)
        daemon.reload()
        wait_until(lambda: daemon.runtime and daemon.runtime.settings is settings[2], what="reload")
        wait_until(lambda: "cannot listen on" in caplog.text, what="the refusal")
        assert "mailproc_database_up 1.0" in scrape(second)
    taken.close()
