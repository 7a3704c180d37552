"""A stored history read as the SLA core's timeline: who responds, who acknowledges, what the
statuses mean."""

from datetime import UTC, datetime, timedelta

import pytest

from mailproc.config.settings import demo_settings, settings_from_dict
from mailproc.sla.clocks import (
    Acknowledged,
    Created,
    Moved,
    PriorityChanged,
    Responded,
    StatusChanged,
)
from mailproc.sla.timeline import Record, timeline
from mailproc.vocabulary import Priority, StatusKind

SETTINGS = demo_settings(environ={})
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ALICE, TINA, SAM, NORA = (
    "alice@example.org",
    "tina@example.com",
    "sam@example.com",
    "nora@example.com",
)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def created(service: str = "email", **detail: object) -> Record:
    return Record(T0, ALICE, "created", {"service": service, "title": "t", **detail}, 1)


def test_creation_starts_the_clocks_with_the_recorded_priority_or_the_default():
    assert timeline([created(priority="P1")], SETTINGS) == [Created(T0, "email", Priority.P1)]
    assert timeline([created()], SETTINGS) == [Created(T0, "email", Priority.P2)]  # the default


def test_the_first_action_of_a_solver_responds_and_every_action_acknowledges():
    facts = timeline(
        [
            created(),
            Record(at(10), ALICE, "comment", {"text": "still down"}, 2),
            Record(at(20), TINA, "comment", {"text": "looking"}, 3),
            Record(at(30), TINA, "related", {"problem": 7}, 4),
        ],
        SETTINGS,
    )
    assert facts[1:] == [
        Responded(at(20), f"first action of {TINA}"),
        Acknowledged(at(20), TINA),
        Acknowledged(at(30), TINA),
    ]


def test_an_assignment_responds_even_in_the_opening_mail_but_nothing_else_there_does():
    facts = timeline(
        [
            created(),
            Record(T0, TINA, "priority", {"from": "P2", "to": "P1"}, 1),
            Record(T0, TINA, "assigned", {"from": None, "to": "tina"}, 1),
            Record(at(5), TINA, "status", {"from": "New", "to": "Solution", "by": "ASSIGN"}, 1),
        ],
        SETTINGS,
    )
    assert facts[1:] == [
        PriorityChanged(T0, Priority.P1),
        Responded(T0, "assigned to tina"),
        StatusChanged(at(5), "Solution", StatusKind.OPEN, False),
    ]


def test_a_solver_of_another_service_is_no_responder_but_an_admin_is():
    sam_only = timeline([created(), Record(at(5), SAM, "comment", {}, 2)], load_settings_sam())
    assert sam_only[1:] == []
    admin = timeline([created(), Record(at(5), NORA, "comment", {}, 2)], SETTINGS)
    assert admin[1:] == [Responded(at(5), f"first action of {NORA}"), Acknowledged(at(5), NORA)]


def load_settings_sam():
    data = SETTINGS.model_dump(exclude={"source"})
    data["people"]["sam"]["services"] = ["network"]
    return settings_from_dict(data, "test", {})


def test_an_ack_acknowledges_whoever_sends_it_and_an_unassignment_is_only_an_action():
    facts = timeline(
        [
            created(),
            Record(at(5), "duty@example.com", "acknowledged", {}, 2),
            Record(at(6), TINA, "assigned", {"from": "tina", "to": None}, 3),
        ],
        SETTINGS,
    )
    assert facts[1:] == [
        Acknowledged(at(5), "duty@example.com"),
        Responded(at(6), f"first action of {TINA}"),
        Acknowledged(at(6), TINA),
    ]


def test_refusals_replies_not_applied_and_escalations_are_no_actions():
    facts = timeline(
        [
            created(),
            Record(at(1), TINA, "command_rejected", {"command": "[X]", "reason": "r"}, 2),
            Record(at(2), TINA, "reply_not_applied", {"reason": "r"}, 3),
            Record(at(3), "mailproc", "escalated", {"level": 1}, None),
        ],
        SETTINGS,
    )
    assert facts[1:] == []


def test_statuses_are_read_in_the_workflow_of_the_service_the_incident_is_in():
    facts = timeline(
        [
            created(),
            Record(at(1), NORA, "moved", {"from": "email", "to": "network"}, 2),
            Record(at(2), NORA, "status", {"from": "New", "to": "Resolved", "by": "RESOLVE"}, 3),
            Record(at(3), ALICE, "status", {"from": "Resolved", "to": "New", "by": "reply"}, 4),
            Record(at(4), ALICE, "status", {"from": "New", "to": "Gone", "by": "x"}, 5),
        ],
        SETTINGS,
    )
    assert [f for f in facts if not isinstance(f, Responded | Acknowledged)][1:] == [
        Moved(at(1), "network"),
        StatusChanged(at(2), "Resolved", StatusKind.RESOLVED, False),
        StatusChanged(at(3), "New", StatusKind.OPEN, False),
        StatusChanged(at(4), "Gone", StatusKind.OPEN, False),  # unknown: open and running
    ]


def test_a_paused_status_says_so():
    data = SETTINGS.model_dump(exclude={"source"})
    waiting = {"name": "Waiting", "kind": "open", "paused": True}
    workflow = data["workflows"]["default"]
    workflow["statuses"] = [*workflow["statuses"], waiting]
    settings = settings_from_dict(data, "test", {})
    record = Record(at(1), ALICE, "status", {"from": "New", "to": "Waiting", "by": "x"}, 2)
    assert timeline([created(), record], settings)[1] == StatusChanged(
        at(1), "Waiting", StatusKind.OPEN, True
    )


def test_a_history_without_its_creation_is_refused():
    with pytest.raises(ValueError, match="created event"):
        timeline([Record(T0, ALICE, "comment", {}, 1)], SETTINGS)
