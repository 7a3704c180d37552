"""Configuration of calendars, SLA targets, escalation ladders and the priority matrix."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailproc.config.settings import ConfigError, demo_settings, load_settings
from mailproc.sla.clocks import Trigger, policy_from_settings
from mailproc.vocabulary import Priority, SlaTarget

EXAMPLE = Path(__file__).parents[2] / "config" / "mailproc.example.toml"
H = timedelta(hours=1)

MINIMAL = """
support_address = "support@example.com"
default_service = "it"
[services.it]
title = "IT"
"""


def load(tmp_path: Path, extra: str):
    path = tmp_path / "mailproc.toml"
    path.write_text(MINIMAL + "\n" + extra + "\n")
    return load_settings(path, environ={})


def test_without_sla_keys_everything_runs_around_the_clock_with_default_targets(tmp_path):
    settings = load(tmp_path, "")
    policy = policy_from_settings(settings).of("it")
    assert policy.calendar.always
    assert policy.targets[Priority.P1].response == timedelta(minutes=30)
    assert [(lv.number, str(lv.trigger), lv.recipients) for lv in policy.ladder] == [
        (1, "75%", ("assignee", "first_line")),
        (2, "breach", ("team",)),
    ]
    assert settings.sla.escalation_interval_seconds == 60


def test_the_example_configures_calendars_targets_and_ladders():
    settings = load_settings(EXAMPLE, environ={})
    policy = policy_from_settings(settings)
    assert policy.of("email").calendar.name == "office"
    network = policy.of("network")
    assert network.calendar.always
    assert network.targets[Priority.P1].resolution == 2 * H
    assert network.targets[Priority.P3].resolution == 24 * H  # from [sla.targets]
    assert str(network.ladder[2].trigger) == "breach + 1h"
    duty = policy.of("email").ladder[2]
    assert (duty.recipients, duty.targets) == (
        ("duty-manager@example.com",),
        frozenset({SlaTarget.RESOLUTION}),
    )
    new_york = settings.calendars["new-york"].build("new-york")
    assert new_york.is_holiday(datetime(2026, 7, 3, tzinfo=UTC).date())


def test_the_embedded_defaults_have_an_office_calendar_with_czech_holidays(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    policy = policy_from_settings(demo_settings(environ={}))
    office = policy.of("email").calendar
    assert office.description.startswith("office (Europe/Prague; Mon–Fri 08:00–12:00")
    assert office.is_holiday(datetime(2026, 12, 24).date())
    assert policy.of("network").calendar.always


def test_a_service_may_turn_escalation_off_and_replace_single_priorities(tmp_path):
    settings = load(
        tmp_path,
        '[services.quiet]\nescalation = []\ntargets.P2 = { response = "2h", resolution = "1h30m" }',
    )
    quiet = policy_from_settings(settings).of("quiet")
    assert quiet.ladder == ()
    assert quiet.targets[Priority.P2].resolution == timedelta(hours=1, minutes=30)
    assert quiet.targets[Priority.P4].resolution == 40 * H


def test_triggers_are_read_as_percentages_or_business_time_after_the_breach(tmp_path):
    settings = load(
        tmp_path,
        '[[sla.escalation]]\nat = "50 %"\nto = ["team"]\n'
        '[[sla.escalation]]\nat = "Breach"\nto = ["team"]\n'
        '[[sla.escalation]]\nat = "breach+1h30m"\nto = ["Boss@Example.com"]',
    )
    ladder = policy_from_settings(settings).of("it").ladder
    assert [lv.trigger for lv in ladder] == [
        Trigger(percent=50),
        Trigger(),
        Trigger(after_breach=timedelta(hours=1, minutes=30)),
    ]
    assert ladder[2].recipients == ("boss@example.com",)


CALENDAR = '[calendars.office]\nzone = "Europe/Prague"\nhours.mon = ["08:00-17:00"]\n'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[services.db]\ncalendar = "ofice"', "services.db.calendar: unknown calendar 'ofice'"),
        ('[sla]\ncalendar = "nope"', "sla.calendar: unknown calendar 'nope'"),
        ('[calendars.x]\nzone = "Mars/Olympus"', "calendars.x.zone: unknown time zone"),
        (
            '[calendars.x]\nhours.mon = ["17:00-08:00"]',
            "calendars.x.hours: mon: '17:00-08:00': the end must come after the start",
        ),
        ('[calendars.x]\nhours.monday = ["08:00-17:00"]', "calendars.x.hours.monday.[key]"),
        ('[calendars.x]\nzone = "UTC"', "calendars.x: no working hours on any day"),
        (
            '[calendars.x]\nalways = true\ncountry = "CZ"',
            "calendars.x: a 24×7 calendar (always = true) has no hours or holidays",
        ),
        (CALENDAR + 'subdivision = "BY"', "calendars.office: subdivision needs a country"),
        (CALENDAR + 'country = "XY"', "calendars.office: holidays: Country XY not available"),
        (CALENDAR + 'holidays = ["someday"]', "calendars.office.holidays.0"),
        ('[sla.targets]\nP1 = { response = "1d", resolution = "4h" }', "'1d' is not a target"),
        ('[sla.targets]\nP1 = { response = 30, resolution = "4h" }', "as a string like '4h'"),
        ('[sla.targets]\nP1 = { response = "0m", resolution = "4h" }', "longer than zero"),
        (
            '[sla.targets]\nP1 = { response = "1h", resolution = "4h" }',
            "sla.targets: no target for P2, P3, P4; every priority needs one",
        ),
        ('[[sla.escalation]]\nat = "soon"\nto = ["team"]', "sla.escalation.0.at: 'soon' is not"),
        ('[[sla.escalation]]\nat = "150%"\nto = ["team"]', "a percentage runs from above 0 to 100"),
        ('[[sla.escalation]]\nat = "breach + 2d"\nto = ["team"]', "not an amount of business"),
        ('[[sla.escalation]]\nat = "75%"\nto = ["the boss"]', "sla.escalation.0.to: 'the boss'"),
        (
            '[[sla.escalation]]\nat = "75%"\nto = []',
            "sla.escalation.0.to: Tuple should have at least 1 item",
        ),
        (
            '[[sla.escalation]]\nat = "breach"\nto = ["team"]\n'
            '[[sla.escalation]]\nat = "75%"\nto = ["team"]',
            "sla.escalation: level 2 ('75%') must come after level 1 ('breach')",
        ),
        (
            '[[services.it.escalation]]\nat = "breach + 1h"\nto = ["team"]\n'
            '[[services.it.escalation]]\nat = "breach + 30m"\nto = ["team"]',
            "services.it.escalation: level 2 ('breach + 30m') must come after level 1",
        ),
        ("[sla]\nat_risk_percent = 100", "sla.at_risk_percent: Input should be less than 100"),
        ("[sla]\nescalation_interval_seconds = 0", "sla.escalation_interval_seconds"),
        (
            '[priority_matrix.impact]\nhigh = { high = "P1" }\nlow = { low = "P4" }',
            "priority_matrix: impact.low: urgencies differ from the first row's",
        ),
        (
            '[priority_matrix]\ndefault_impact = "huge"',
            "priority_matrix: default_impact: 'huge' is not an impact",
        ),
        ('[priority_matrix.impact]\nhigh = { high = "P0" }', "priority_matrix.impact.high.high"),
        (
            '[priority_matrix.impact]\n"very high" = { high = "P1" }',
            "'very high': levels are single lower-case words",
        ),
    ],
)
def test_sla_errors_name_file_key_and_fault(tmp_path, extra, message):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    assert message in str(caught.value)
    assert str(tmp_path / "mailproc.toml") in str(caught.value)


def test_a_configured_matrix_sets_the_words_of_impact_and_urgency(tmp_path):
    settings = load(
        tmp_path,
        '[priority_matrix]\ndefault_impact = "site"\ndefault_urgency = "later"\n'
        '[priority_matrix.impact]\ncompany = { now = "P1", later = "P2" }\n'
        'site = { now = "P2", later = "P4" }',
    )
    matrix = settings.priority_matrix
    assert (matrix.impacts, matrix.urgencies) == (("company", "site"), ("now", "later"))
    assert matrix.priority(None, "now") is Priority.P2
    assert matrix.priority("company", None) is Priority.P2
    assert settings.language.syntax(settings.language.words["IMPACT"]) == "[IMPACT company|site]"
