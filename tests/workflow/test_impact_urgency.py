"""[IMPACT …], [URGENCY …] and [ACK]: parsing, the transition tables, the matrix, permissions."""

from dataclasses import replace

import pytest

from mailproc.config.settings import ConfigError, demo_settings, settings_from_dict
from mailproc.inbound.subject import BadCommand, Command, Language, parse_subject
from mailproc.vocabulary import EventKind, Priority, Verb
from mailproc.workflow.decision import Actor, IncidentView, decide

SETTINGS = demo_settings(environ={})
SAM = Actor("sam@example.com", "sam")
NORA = Actor("nora@example.com", "nora")
REPORTER = Actor("alice@example.org")
STRANGER = Actor("mallory@example.net")


def view(service: str = "email", status: str = "New", **changes) -> IncidentView:
    base = IncidentView(1, service, status, Priority.P3, "sam", "alice@example.org")
    return replace(base, **changes)


def run(v: IncidentView, subject: str, actor: Actor = SAM):
    return decide(
        v, parse_subject(subject, SETTINGS.language).commands, actor, SETTINGS, frozenset()
    )


@pytest.mark.parametrize(
    ("subject", "verb", "arg"),
    [
        ("[IMPACT high]", Verb.IMPACT, "high"),
        ("[impact Medium]", Verb.IMPACT, "medium"),
        ("[URGENCY LOW]", Verb.URGENCY, "low"),
        ("[ACK]", Verb.ACK, None),
        ("Re: [INC-4] [ack] on it", Verb.ACK, None),
    ],
)
def test_the_new_commands_parse(subject, verb, arg):
    (command,) = parse_subject(subject).commands
    assert isinstance(command, Command)
    assert (command.verb, command.arg) == (verb, arg)


@pytest.mark.parametrize(
    ("subject", "reason"),
    [
        ("[IMPACT]", "IMPACT needs an argument. Syntax: [IMPACT high|medium|low]"),
        ("[IMPACT huge]", "unknown impact 'huge'. Syntax: [IMPACT high|medium|low]"),
        ("[URGENCY asap]", "unknown urgency 'asap'. Syntax: [URGENCY high|medium|low]"),
        (
            "[ACK now]",
            "'now' is not an incident number. Syntax: [ACK], or [ACK INC-n] for another incident",
        ),
        ("[IMPAKT high]", "did you mean IMPACT? Syntax: [IMPACT high|medium|low]"),
        ("[URGENTCY low]", "did you mean URGENCY? Syntax: [URGENCY high|medium|low]"),
    ],
)
def test_bad_arguments_are_refused_with_the_syntax(subject, reason):
    (bad,) = parse_subject(subject).commands
    assert isinstance(bad, BadCommand)
    assert reason in bad.reason


def test_the_words_come_from_the_configured_matrix():
    language = Language.with_aliases({}, {Verb.IMPACT: ("company", "site"), Verb.URGENCY: ("now",)})
    (ok,) = parse_subject("[IMPACT Company]", language).commands
    assert isinstance(ok, Command) and ok.arg == "company"
    (bad,) = parse_subject("[IMPACT high]", language).commands
    assert isinstance(bad, BadCommand) and "Syntax: [IMPACT company|site]" in bad.reason


# (service, status, subject) -> resulting status, or None when the table refuses it
TABLE = {
    ("email", "New", "[IMPACT high]"): "New",
    ("email", "Solution", "[IMPACT high]"): "Solution",
    ("email", "Closed", "[IMPACT high]"): None,
    ("email", "New", "[URGENCY low]"): "New",
    ("email", "Solution", "[URGENCY low]"): "Solution",
    ("email", "Closed", "[URGENCY low]"): None,
    ("network", "New", "[IMPACT low]"): "New",
    ("network", "Resolved", "[IMPACT low]"): "Resolved",
    ("network", "Closed", "[IMPACT low]"): None,
    ("network", "New", "[URGENCY high]"): "New",
    ("network", "Resolved", "[URGENCY high]"): "Resolved",
    ("network", "Closed", "[URGENCY high]"): None,
}


@pytest.mark.parametrize(("service", "status", "subject"), list(TABLE))
def test_every_new_command_in_every_status(service, status, subject):
    expected = TABLE[(service, status, subject)]
    decision = run(view(service, status), subject)
    if expected is None:
        assert len(decision.refused) == 1
        assert f"is not allowed in status {status}" in decision.refused[0].reason
    else:
        assert decision.refused == ()
        assert decision.view.status == expected


# (impact, urgency, priority before, subject) -> (impact, urgency, priority, event kinds)
MATRIX = [
    (None, None, "P3", "[IMPACT high]", ("high", None, "P2", ["impact", "priority"])),
    (None, None, "P3", "[URGENCY high]", (None, "high", "P2", ["urgency", "priority"])),
    (None, None, "P3", "[IMPACT medium]", ("medium", None, "P3", ["impact"])),
    (
        None,
        None,
        "P3",
        "[IMPACT high] [URGENCY high]",
        ("high", "high", "P1", ["impact", "priority", "urgency", "priority"]),
    ),
    ("low", None, "P4", "[URGENCY low]", ("low", "low", "P4", ["urgency"])),
    ("high", None, "P2", "[IMPACT high]", ("high", None, "P2", [])),
    (
        None,
        None,
        "P3",
        "[IMPACT low] [PRIORITY P1]",
        ("low", None, "P1", ["impact", "priority", "priority"]),
    ),
    (
        None,
        None,
        "P3",
        "[PRIORITY P1] [URGENCY low]",
        (None, "low", "P4", ["priority", "urgency", "priority"]),
    ),
]


@pytest.mark.parametrize(("impact", "urgency", "before", "subject", "expected"), MATRIX)
def test_the_matrix_sets_the_priority_and_the_last_command_wins(
    impact, urgency, before, subject, expected
):
    decision = run(view(impact=impact, urgency=urgency, priority=Priority(before)), subject)
    after = decision.view
    kinds = [e.kind.value for e in decision.events]
    assert (after.impact, after.urgency, after.priority.value, kinds) == expected


def test_matrix_events_say_from_what_to_what_and_why():
    decision = run(view(), "[IMPACT high]")
    assert [dict(e.detail) for e in decision.events] == [
        {"from": None, "to": "high"},
        {"from": "P3", "to": "P2", "by": "matrix"},
    ]
    assert decision.events[0].kind is EventKind.IMPACT


@pytest.mark.parametrize(
    ("service", "status", "allowed"),
    [
        ("email", "New", True),
        ("email", "Solution", True),
        ("email", "Closed", False),
        ("network", "New", True),
        ("network", "Resolved", False),  # a resolved incident is never escalated
        ("network", "Closed", False),
    ],
)
def test_ack_needs_no_transition_and_is_accepted_in_every_open_status(service, status, allowed):
    decision = run(view(service, status), "[ACK]")
    assert (decision.refused == ()) is allowed
    if not allowed:
        assert decision.refused[0].reason.startswith(f"nothing to acknowledge: INC-1 is {status}")


def test_ack_records_an_acknowledgment_and_changes_nothing_else():
    before = view()
    decision = run(before, "[ACK]")
    assert (decision.view, decision.applied) == (before, ("[ACK]",))
    assert [(e.kind, dict(e.detail)) for e in decision.events] == [(EventKind.ACKNOWLEDGED, {})]


def test_ack_counts_in_a_paused_status_of_a_workflow_of_ones_own():
    waiting = {"name": "Waiting", "kind": "open", "paused": True}
    workflow = SETTINGS.workflows["default"].model_dump()
    workflow["statuses"] = [*workflow["statuses"], waiting]
    data = SETTINGS.model_dump(exclude={"source"})
    data["workflows"] = {**data["workflows"], "default": workflow}
    settings = settings_from_dict(data, "test", {})
    decision = decide(
        view(status="Waiting"), parse_subject("[ACK]").commands, SAM, settings, frozenset()
    )
    assert decision.refused == () and decision.events[0].kind is EventKind.ACKNOWLEDGED


def test_a_workflow_may_not_list_ack_as_a_transition():
    data = SETTINGS.model_dump(exclude={"source"})
    workflow = data["workflows"]["default"]
    workflow["transitions"]["ACK"] = {"New": "New"}
    with pytest.raises(ConfigError, match=r"transitions.ACK: \[ACK\] changes no status"):
        settings_from_dict(data, "test", {})


@pytest.mark.parametrize(
    ("actor", "subject", "allowed"),
    [
        (SAM, "[IMPACT high]", True),
        (NORA, "[URGENCY low]", True),
        (NORA, "[ACK]", True),
        (SAM, "[ACK]", True),
        (REPORTER, "[IMPACT high]", False),
        (REPORTER, "[ACK]", False),
        (STRANGER, "[ACK]", False),
        (Actor("duty@example.com"), "[ACK]", False),
        (STRANGER, "[URGENCY high]", False),
    ],
)
def test_only_solvers_and_admins_may_use_them(actor, subject, allowed):
    assert (run(view(), subject, actor).refused == ()) is allowed


def test_whoever_an_escalation_was_mailed_to_may_acknowledge_it_and_nothing_else():
    escalated = view(escalated_to=frozenset({"duty@example.com"}))
    duty = Actor("duty@example.com")
    assert run(escalated, "[ACK]", duty).refused == ()
    assert "may not use PRIORITY" in run(escalated, "[PRIORITY P1]", duty).refused[0].reason
