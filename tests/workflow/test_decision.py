"""Every command in every status of both shipped workflows, permissions, all-or-nothing."""

from dataclasses import replace

import pytest

from mailproc.config.settings import demo_settings
from mailproc.inbound.subject import parse_subject
from mailproc.vocabulary import EventKind, Priority
from mailproc.workflow.decision import (
    NOT_APPLIED,
    Actor,
    IncidentView,
    close_by_timeout,
    decide,
    reopen_by_reply,
)

SETTINGS = demo_settings(environ={})  # embedded defaults: email=default, network=resolved
TINA = Actor("tina@example.com", "tina")
SAM = Actor("sam@example.com", "sam")
NORA = Actor("nora@example.com", "nora")
REPORTER = Actor("alice@example.org")
STRANGER = Actor("mallory@example.net")
PROBLEMS = frozenset({7})


def view(service: str, status: str, assignee: str | None = "sam") -> IncidentView:
    return IncidentView(
        number=1,
        service=service,
        status=status,
        priority=Priority.P3,
        assignee=assignee,
        reporter="alice@example.org",
    )


def run(v: IncidentView, subject: str, actor: Actor = SAM):
    return decide(v, parse_subject(subject).commands, actor, SETTINGS, PROBLEMS)


# (service, status, subject) -> resulting status, or None when the command must be refused.
# sam solves both email and network, so permissions never interfere in this table.
TABLE = {
    # default workflow (service email): New -> Solution -> Closed
    ("email", "New", "[ASSIGN tina]"): "Solution",
    ("email", "Solution", "[ASSIGN tina]"): "Solution",
    ("email", "Closed", "[ASSIGN tina]"): None,
    ("email", "New", "[CLOSE]"): "Closed",
    ("email", "Solution", "[CLOSE]"): "Closed",
    ("email", "Closed", "[CLOSE]"): None,
    ("email", "New", "[RESOLVE]"): None,
    ("email", "Solution", "[RESOLVE]"): None,
    ("email", "Closed", "[RESOLVE]"): None,
    ("email", "New", "[REOPEN]"): None,
    ("email", "Solution", "[REOPEN]"): None,
    ("email", "Closed", "[REOPEN]"): "Solution",
    ("email", "New", "[PRIORITY P1]"): "New",
    ("email", "Solution", "[PRIORITY P1]"): "Solution",
    ("email", "Closed", "[PRIORITY P1]"): None,
    ("email", "New", "[MOVE general]"): "New",
    ("email", "Solution", "[MOVE general]"): "New",  # sam does not solve general: unassigned
    ("email", "Closed", "[MOVE general]"): None,
    ("email", "New", "[RELATE PRB-7]"): "New",
    ("email", "Solution", "[RELATE PRB-7]"): "Solution",
    ("email", "Closed", "[RELATE PRB-7]"): "Closed",
    # resolved workflow (service network): New -> Resolved -> Closed
    ("network", "New", "[ASSIGN sam]"): "New",
    ("network", "Resolved", "[ASSIGN sam]"): None,
    ("network", "Closed", "[ASSIGN sam]"): None,
    ("network", "New", "[RESOLVE]"): "Resolved",
    ("network", "Resolved", "[RESOLVE]"): None,
    ("network", "Closed", "[RESOLVE]"): None,
    ("network", "New", "[CLOSE]"): "Closed",
    ("network", "Resolved", "[CLOSE]"): "Closed",
    ("network", "Closed", "[CLOSE]"): None,
    ("network", "New", "[REOPEN]"): None,
    ("network", "Resolved", "[REOPEN]"): "New",
    ("network", "Closed", "[REOPEN]"): "New",
    ("network", "New", "[PRIORITY low]"): "New",
    ("network", "Resolved", "[PRIORITY low]"): "Resolved",
    ("network", "Closed", "[PRIORITY low]"): None,
    ("network", "New", "[MOVE email]"): "New",
    ("network", "Resolved", "[MOVE email]"): None,
    ("network", "Closed", "[MOVE email]"): None,
    ("network", "New", "[RELATE PRB-7]"): "New",
    ("network", "Resolved", "[RELATE PRB-7]"): "Resolved",
    ("network", "Closed", "[RELATE PRB-7]"): "Closed",
}


@pytest.mark.parametrize(("service", "status", "subject"), list(TABLE))
def test_every_command_in_every_status(service, status, subject):
    expected = TABLE[(service, status, subject)]
    decision = run(view(service, status), subject)
    if expected is None:
        assert decision.view == view(service, status)
        assert len(decision.refused) == 1
        assert [e.kind for e in decision.events] == [EventKind.COMMAND_REJECTED]
    else:
        assert decision.refused == ()
        assert decision.view.status == expected
        assert decision.applied == (subject,)


def test_refusal_names_the_allowed_statuses():
    decision = run(view("email", "Closed"), "[ASSIGN tina]")
    assert decision.refused[0].reason == (
        "ASSIGN is not allowed in status Closed (allowed in: New, Solution, Waiting)"
    )


def test_a_verb_outside_the_workflow_is_refused_with_the_workflow_name():
    decision = run(view("email", "New"), "[RESOLVE]")
    assert "RESOLVE is not used in workflow 'default'" in decision.refused[0].reason


def test_commands_apply_in_order_each_seeing_the_last():
    decision = run(view("email", "New", None), "[ASSIGN tina] [PRIORITY P1] [CLOSE]")
    assert (decision.view.status, decision.view.assignee) == ("Closed", "tina")
    assert decision.view.priority is Priority.P1
    kinds = [e.kind for e in decision.events]
    assert kinds == [EventKind.ASSIGNED, EventKind.STATUS, EventKind.PRIORITY, EventKind.STATUS]


def test_all_or_nothing_when_one_command_is_refused():
    before = view("email", "New", None)
    decision = run(before, "[ASSIGN tina] [PRIORITY P1] [MOVE nowhere]")
    assert decision.view == before
    assert decision.applied == ()
    reasons = {r.command: r.reason for r in decision.refused}
    assert reasons["[ASSIGN tina]"] == NOT_APPLIED
    assert reasons["[PRIORITY P1]"] == NOT_APPLIED
    assert reasons["[MOVE nowhere]"].startswith("unknown service 'nowhere'")


def test_a_mistyped_command_refuses_the_whole_mail():
    decision = run(view("email", "New", None), "[ASIGN tina] [CLOSE]")
    assert decision.view.status == "New"
    assert "did you mean ASSIGN" in decision.refused[0].reason
    assert decision.refused[1].reason == NOT_APPLIED


def test_unknown_person_suggests_the_closest_name_and_lists_the_solvers():
    decision = run(view("email", "New"), "[ASSIGN tinna]")
    assert decision.refused[0].reason == (
        "unknown person 'tinna' — did you mean 'tina'? Solvers of service email: sam, tina"
    )


def test_assign_a_person_who_does_not_solve_the_service_is_refused():
    decision = run(view("network", "New"), "[ASSIGN tina]")
    assert decision.refused[0].reason == "tina does not solve service network. Solvers: sam"


def test_assign_without_a_name_assigns_the_sender():
    decision = run(view("email", "New", None), "[ASSIGN]", TINA)
    assert decision.view.assignee == "tina"


def test_assign_by_email_address():
    decision = run(view("email", "New", None), "[ASSIGN sam@example.com]", TINA)
    assert decision.view.assignee == "sam"


def test_move_keeps_a_solver_of_the_new_service_and_maps_the_status():
    decision = run(view("email", "Solution", "sam"), "[MOVE network]")
    assert (decision.view.service, decision.view.assignee) == ("network", "sam")
    assert decision.view.status == "New"  # Solution does not exist in the resolved workflow
    assert [e.kind for e in decision.events] == [EventKind.MOVED, EventKind.STATUS]


def test_move_clears_an_assignee_who_does_not_solve_the_new_service():
    decision = run(view("email", "Solution", "tina"), "[MOVE network]", TINA)
    assert decision.view.assignee is None
    assert EventKind.ASSIGNED in [e.kind for e in decision.events]


def test_relate_unknown_problem_is_refused():
    decision = run(view("email", "Solution"), "[RELATE PRB-99]")
    assert decision.refused[0].reason == "unknown problem PRB-99"


def test_relate_twice_is_a_quiet_no_op():
    v = replace(view("email", "Solution"), problems=frozenset({7}))
    decision = run(v, "[RELATE PRB-7]")
    assert decision.refused == () and decision.events == ()


def test_reopen_without_assignee_goes_to_the_initial_status():
    decision = run(view("email", "Closed", None), "[REOPEN]")
    assert decision.view.status == "New"


@pytest.mark.parametrize(
    ("actor", "subject", "allowed"),
    [
        (REPORTER, "[CLOSE]", True),
        (REPORTER, "[ASSIGN tina]", False),
        (REPORTER, "[PRIORITY P1]", False),
        (STRANGER, "[CLOSE]", False),
        (TINA, "[CLOSE]", True),  # solver of email
        (NORA, "[CLOSE]", True),  # admin
    ],
)
def test_who_may_command(actor, subject, allowed):
    decision = run(view("email", "Solution"), subject, actor)
    assert (decision.refused == ()) is allowed


def test_a_solver_of_another_service_may_not_command():
    decision = run(view("network", "New"), "[CLOSE]", TINA)
    assert "tina@example.com may not use CLOSE; solvers of service network: sam" in (
        decision.refused[0].reason
    )


def test_reporter_refusal_says_what_the_reporter_may_do():
    decision = run(view("email", "Solution"), "[PRIORITY P1]", REPORTER)
    assert decision.refused[0].reason.startswith("as the reporter you may use CLOSE, REOPEN")


def test_reopen_by_reply_from_closed_and_resolved():
    assert reopen_by_reply(view("email", "Closed"), SETTINGS).view.status == "Solution"
    assert reopen_by_reply(view("network", "Resolved"), SETTINGS).view.status == "New"
    assert reopen_by_reply(view("email", "New"), SETTINGS).events == ()


def test_close_by_timeout_only_where_close_is_allowed():
    assert close_by_timeout(view("network", "Resolved"), SETTINGS).view.status == "Closed"
    assert close_by_timeout(view("email", "Closed"), SETTINGS).events == ()
