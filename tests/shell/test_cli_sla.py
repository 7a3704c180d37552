"""`mailproc sla what-if`: due times and escalation moments from the configuration alone."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from mailproc.cli import command

EXAMPLE = Path(__file__).parents[2] / "config" / "mailproc.example.toml"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config/mailproc.toml here: the embedded defaults
    monkeypatch.delenv("MAILPROC_CONFIG", raising=False)

    def invoke(*args: str, code: int = 0):
        result = CliRunner().invoke(command(), list(args))
        assert result.exit_code == code, result.output + result.stderr
        return result

    return invoke


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
    assert "service network, priority P1, created 2026-03-27 15:30 UTC" in out
    assert "response: target 15m of business time, due 2026-03-27 15:45 UTC" in out
    assert "level 1 at 50%            2026-03-27 15:37:30 UTC" in out
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
