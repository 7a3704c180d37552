"""`mailproc sla what-if|report|explain|recompute` and `mailproc escalate --once`."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailproc.config.settings import demo_settings
from mailproc.desk.escalations import run_escalations
from mailproc.desk.mail import Desk
from mailproc.desk.outcome import Disposition
from mailproc.store.db import make_engine
from mailproc.store.schema import upgrade
from tests.support.clirunner import invoker, use_demo_config
from tests.support.desk import FakeClock
from tests.support.mailfactory import make_mail, message_id_of
from tests.support.slakit import t

EXAMPLE = Path(__file__).parents[2] / "config" / "mailproc.example.toml"
NORA, SERVICEDESK = "Nora <nora@example.com>", "Desk <servicedesk@example.com>"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    use_demo_config(monkeypatch, tmp_path)
    return invoker()


def test_what_if_over_a_weekend_in_the_office_calendar(run):
    out = run(
        "sla", "what-if", "--service", "email", "--priority", "P2", "--at", "2026-03-27T16:30"
    )
    assert out.output.splitlines() == [
        "service email, priority P2, created 2026-03-27 16:30 CET (2026-03-27 15:30 UTC)",
        "calendar office (Europe/Prague; Mon–Fri 08:00–12:00, 13:00–17:00; Sat–Sun off; "
        "holidays CZ + 1 listed date(s))",
        "",
        "response: target 1h of business time, due 2026-03-30 08:30 CEST (2026-03-30 06:30 UTC)",
        "  level 1 at 75%            2026-03-30 08:15 CEST (2026-03-30 06:15 UTC)  "
        "→ assignee, first_line <servicedesk@example.com>",
        "  level 2 at breach         2026-03-30 08:30 CEST (2026-03-30 06:30 UTC)  "
        "→ team <exchange-team@example.com>",
        "  level 3 at breach + 2h    2026-03-30 10:30 CEST (2026-03-30 08:30 UTC)  "
        "→ duty-manager@example.com",
        "",
        "resolution: target 8h of business time, due 2026-03-30 16:30 CEST (2026-03-30 14:30 UTC)",
        "  level 1 at 75%            2026-03-30 14:30 CEST (2026-03-30 12:30 UTC)  "
        "→ assignee, first_line <servicedesk@example.com>",
        "  level 2 at breach         2026-03-30 16:30 CEST (2026-03-30 14:30 UTC)  "
        "→ team <exchange-team@example.com>",
        "  level 3 at breach + 2h    2026-03-31 09:30 CEST (2026-03-31 07:30 UTC)  "
        "→ duty-manager@example.com",
    ]


def test_what_if_around_the_clock_with_an_offset_and_a_priority_word(run):
    out = run(
        "--config",
        str(EXAMPLE),
        "sla",
        "what-if",
        "--service",
        "network",
        "--priority",
        "critical",
        "--at",
        "2026-03-27T16:30+01:00",
    ).output
    # The built-in 24x7 calendar names no zone: the example's locale.zone (Europe/Prague).
    assert "created 2026-03-27 16:30 CET (2026-03-27 15:30 UTC)" in out
    assert "target 15m of business time, due 2026-03-27 16:45 CET (2026-03-27 15:45 UTC)" in out
    assert "level 1 at 50%            2026-03-27 16:37:30 CET (2026-03-27 15:37:30 UTC)" in out
    assert "→ team <network-team@example.com>, noc-lead@example.com" in out


def test_what_if_without_a_time_uses_now(run):
    assert (
        "response: target"
        in run("sla", "what-if", "--service", "general", "--priority", "P4").output
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "mail", "--priority", "P2"], "unknown service 'mail'; services: email"),
        (["--service", "email", "--priority", "P7"], "'P7' is not P1–P4"),
        (["--service", "email", "--priority", "P2", "--at", "Friday"], "not an ISO 8601 time"),
    ],
)
def test_what_if_usage_errors_exit_2(run, args, message):
    result = run("sla", "what-if", *args, code=2)
    assert message in result.stderr


# --- escalate --once, sla report, sla explain, sla recompute: on a SQLite file ---------------


@pytest.fixture
def desk(tmp_path, monkeypatch):
    """A Desk on a SQLite file the CLI reads through MAILPROC_DATABASE_URL; a fake clock."""
    url = f"sqlite:///{tmp_path / 'mailproc.sqlite3'}"
    monkeypatch.setenv("MAILPROC_DATABASE_URL", url)
    settings = demo_settings(environ={"MAILPROC_DATABASE_URL": url, "MAILPROC_SECRET": "t"})
    engine = make_engine(url)
    upgrade(engine)
    yield Desk(settings, engine, FakeClock())
    engine.dispose()


def mail(desk, when: str, **kw) -> str:
    desk.clock.now = t(when)
    raw = make_mail(**kw)
    assert desk.handle(raw).disposition is Disposition.PROCESSED
    return message_id_of(raw)


def test_escalate_once_sends_what_is_due_once(run, desk):
    desk.clock.now = datetime.now(UTC) - timedelta(days=10)
    desk.handle(make_mail(to="network-support@example.com", subject="Switch down"))
    assert run("escalate", "--once").stdout == "escalated 6 level(s)\n"  # 3 levels x 2 targets
    assert run("escalate", "--once").stdout == "escalated 0 level(s)\n"
    assert "use --once" in run("escalate", code=2).stderr


def test_report_lists_open_incidents_breached_first_then_at_risk(run, desk):
    first = mail(desk, "2026-03-02 09:00", subject="Exchange is down")  # email P2: 1h / 8h
    mail(desk, "2026-03-02 09:30", subject="Printer", to="support@example.com")  # P3: 4h / 24h
    mail(desk, "2026-03-02 09:40", subject="Slow VPN", to="network-support@example.com")  # 24x7
    mail(desk, "2026-03-02 09:50", subject="[ASSIGN tina]", sender=NORA, in_reply_to=first)
    old = mail(desk, "2026-03-02 09:55", subject="Old", to="support@example.com")
    mail(desk, "2026-03-02 09:56", subject="[CLOSE]", sender=NORA, in_reply_to=old)
    out = run("sla", "report", "--at", "2026-03-02T13:45+01:00").output.splitlines()
    assert out == [
        "3 open incident(s) at 2026-03-02 12:45: 1 breached, 1 at risk (times in UTC)",
        "REF       SERVICE    PRIO STATUS     STANDING  RESPONSE DUE      RESOLUTION DUE    "
        "NEXT ESCALATION   TITLE",
        "INC-3     network    P3   New        breached  2026-03-02 12:40  2026-03-03 08:40  "
        "2026-03-02 11:40  Slow VPN",  # no pass has run: 75 % of 4h is overdue
        "INC-2     general    P3   New        at risk   2026-03-02 13:30  2026-03-05 08:30  "
        "2026-03-02 12:30  Printer",
        "INC-1     email      P2   Solution   on track  responded         2026-03-03 08:00  "
        "2026-03-02 15:00  Exchange is down",
    ]
    later = run("sla", "report", "--json", "--at", "2026-03-02T14:00").output
    rows = {row["ref"]: row for row in json.loads(later)}
    assert rows["INC-2"]["standing"] == "breached" and rows["INC-2"]["breached"] == ["response"]
    assert rows["INC-1"]["response_due"] is None
    assert rows["INC-1"]["resolution_due"] == "2026-03-03T08:00:00+00:00"


def test_explain_shows_each_step_and_each_escalation(run, desk):
    first = mail(desk, "2026-03-27 16:30", subject="Exchange is down")  # Friday, before DST
    desk.clock.now = t("2026-03-30 08:20")
    run_escalations(desk.settings, desk.engine, desk.clock)
    mail(desk, "2026-03-30 08:25", subject="[ACK]", sender=SERVICEDESK, in_reply_to=first)
    mail(desk, "2026-03-30 09:00", subject="[PRIORITY P4]", sender=NORA, in_reply_to=first)
    out = run("sla", "explain", "INC-1", "--at", "2026-03-30T10:00+02:00").output.splitlines()
    office = (
        "calendar office (Europe/Prague; Mon–Fri 08:00–12:00, 13:00–17:00; Sat–Sun off; "
        "holidays CZ + 1 listed date(s))"
    )
    assert out == [
        "INC-1  Exchange is down",
        "service email, priority P4, status New; now 2026-03-30 08:00 UTC",
        "",
        "response (cycle 1): target 1h",
        f"  2026-03-27 16:30 CET  created in service email with priority P2: {office}, target 1h",
        "  2026-03-30 09:00 CEST  responded (first action of nora@example.com): the clock stops "
        "after 1h30m",
        "  2026-03-30 10:00 CEST  stopped at 2026-03-30 09:00 CEST, 1h30m of 1h elapsed, due "
        "2026-03-30 08:30 CEST — breached",
        "  escalations:",
        "    level 1 at 75%            2026-03-30 08:15 CEST: sent 2026-03-30 08:20 CEST to "
        "servicedesk@example.com",
        "    level 2 at breach         2026-03-30 08:30 CEST: not sent: the ladder was "
        "acknowledged",
        "    level 3 at breach + 2h    (not reached): not sent: the ladder was acknowledged",
        "",
        "resolution (cycle 1): target 40h",
        f"  2026-03-27 16:30 CET  created in service email with priority P2: {office}, target 8h",
        "  2026-03-30 09:00 CEST  priority P2 → P4: target 40h counted from the start; 1h30m "
        "already elapsed carries over",
        "  2026-03-30 10:00 CEST  running, 2h30m of 40h elapsed, due 2026-04-07 16:30 CEST — "
        "on track",
        "  escalations:",
        "    level 1 at 75%            2026-04-02 14:30 CEST: pending",
        "    level 2 at breach         2026-04-07 16:30 CEST: pending",
        "    level 3 at breach + 2h    2026-04-08 09:30 CEST: pending",
    ]


def test_explain_of_an_unknown_incident_exits_4(run, desk):
    assert "no incident INC-9" in run("sla", "explain", "INC-9", code=4).stderr


def test_recompute_stores_the_due_times_of_every_open_incident(run, desk):
    mail(desk, "2026-03-02 09:00")
    mail(desk, "2026-03-02 09:10", to="support@example.com")
    assert run("sla", "recompute").output == "recomputed the due times of 2 incident(s)\n"


def test_workflows_show_that_ack_is_accepted_in_every_open_status(run):
    out = run("workflows", "network").output
    assert "New (open): [ASSIGN] → New" in out and "[ACK]" in out.split("Resolved (")[0]
    assert "[ACK]" not in out.split("Resolved (")[1]


# --- typed times the zone skips or repeats; 24×7 in its zone; targets in business days -------


@pytest.mark.parametrize(
    ("at", "message"),
    [
        (
            "2026-03-29T02:30",
            "2026-03-29 02:30 does not exist in Europe/Prague: the clocks jump forward from "
            "02:00 to 03:00 on 2026-03-29; give a time before or after the gap",
        ),
        (
            "2026-10-25T02:30",
            "2026-10-25 02:30 happens twice in Europe/Prague: the clocks go back from 03:00 to "
            "02:00 on 2026-10-25, so it is first +02:00 and then +01:00; write the offset you "
            "mean, e.g. 2026-10-25T02:30+02:00",
        ),
    ],
)
def test_what_if_refuses_a_time_the_calendar_zone_skips_or_repeats(run, at, message):
    result = run("sla", "what-if", "--service", "email", "--priority", "P2", "--at", at, code=2)
    assert message in " ".join(result.stderr.split())
    ok = run("sla", "what-if", "--service", "email", "--priority", "P2", "--at", at + "+01:00")
    assert "created 2026-" in ok.output


TOKYO_DAYS = """
support_address = "support@example.com"
default_service = "noc"
[services.noc]
calendar = "tokyo"
team = "noc@example.com"
[calendars.tokyo]
always = true
zone = "Asia/Tokyo"
day_cutoff = "09:00"
[sla]
calendar = "tokyo"
[sla.targets]
P1 = { response = "15m", resolution = "1bd" }
P2 = { response = "1h", resolution = "2bd" }
P3 = { response = "4h", resolution = "3bd" }
P4 = { response = "8h", resolution = "5bd" }
[[sla.escalation]]
at = "50%"
to = ["team"]
"""


def test_what_if_on_a_24x7_calendar_in_tokyo_with_a_target_in_business_days(run, tmp_path):
    (tmp_path / "tokyo.toml").write_text(TOKYO_DAYS)
    out = run(
        "--config", "tokyo.toml", "sla", "what-if", "--service", "noc", "--priority", "P2",
        "--at", "2026-03-02T08:00",
    ).output.splitlines()  # fmt: skip
    assert out == [
        "service noc, priority P2, created 2026-03-02 08:00 JST (2026-03-01 23:00 UTC)",
        "calendar tokyo (Asia/Tokyo; 24×7)",
        "",
        "response: target 1h of business time, due 2026-03-02 09:00 JST (2026-03-02 00:00 UTC)",
        "  level 1 at 50%            2026-03-02 08:30 JST (2026-03-01 23:30 UTC)  "
        "→ team <noc@example.com>",
        "",
        "resolution: target 2bd (end of working day 2, the opening day counting before 09:00: "
        "40h of business time), due 2026-03-04 00:00 JST (2026-03-03 15:00 UTC)",
        "  level 1 at 50%            2026-03-03 04:00 JST (2026-03-02 19:00 UTC)  "
        "→ team <noc@example.com>",
    ]
