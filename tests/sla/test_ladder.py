"""The escalation ladder, walked with a fake clock: each level once, ACK, recomputation."""

from datetime import datetime, timedelta

import pytest

from mailproc.config.settings import ServiceConfig
from mailproc.sla.clocks import (
    Acknowledged,
    Created,
    Fact,
    Level,
    Moved,
    PriorityChanged,
    Responded,
    StatusChanged,
    Trigger,
    compute,
)
from mailproc.sla.ladder import Sent, level_moments, plan, recipients
from mailproc.vocabulary import Priority, SlaTarget, StatusKind
from tests.support.slakit import LADDER, POLICY, RESOLUTION_ONLY, H, M, t, wall

RESPONSE, RESOLUTION = SlaTarget.RESPONSE, SlaTarget.RESOLUTION
MON_9 = t("2026-03-02 09:00")


def walk(
    timeline: list[Fact], until: datetime, step: timedelta = 5 * M, service: str = "email"
) -> list[tuple[str, int, int, str | None]]:
    """Run the pass every `step` like the daemon would, recording what it sends (only facts
    that happened by then are known to each pass); also checks next_at against the sends."""
    sent: list[Sent] = []
    announced: tuple[int, datetime | None] = (0, None)  # facts known, next_at then
    now = timeline[0].at
    while now <= until:
        known = [f for f in timeline if f.at <= now]
        ladder = POLICY.of(service).ladder
        result = plan(compute(known, POLICY, now), ladder, sent, now)
        if announced[0] == len(known):  # nothing new happened: next_at told the truth
            next_at = announced[1]
            assert bool(result.due) == (next_at is not None and next_at <= now)
        for e in result.due:
            assert e.due_at <= now
            sent.append(Sent(e.target, e.cycle, e.level.number, now))
        announced = (len(known), result.next_at)
        now += step
    return [(s.target.value, s.cycle, s.level, wall(s.at)) for s in sent]


def test_each_level_fires_once_at_its_moment():
    fired = walk([Created(MON_9, "email", Priority.P2)], t("2026-03-04 17:00"))
    assert fired == [
        ("response", 1, 1, "Mon 2026-03-02 09:45"),  # 75% of 1h
        ("response", 1, 2, "Mon 2026-03-02 10:00"),  # breach
        ("response", 1, 3, "Mon 2026-03-02 12:00"),  # breach + 2 business hours (over lunch)
        ("resolution", 1, 1, "Mon 2026-03-02 16:00"),  # 75% of 8h = 6h
        ("resolution", 1, 2, "Tue 2026-03-03 09:00"),  # 8h
        ("resolution", 1, 3, "Tue 2026-03-03 11:00"),
    ]


def test_next_at_is_the_moment_of_the_next_level():
    status = compute([Created(MON_9, "email", Priority.P2)], POLICY, MON_9)
    assert wall(plan(status, LADDER, [], MON_9).next_at) == "Mon 2026-03-02 09:45"
    sent = [Sent(RESPONSE, 1, 1, t("2026-03-02 09:45"))]
    now = t("2026-03-02 09:50")
    later = plan(compute([Created(MON_9, "email", Priority.P2)], POLICY, now), LADDER, sent, now)
    assert later.due == ()
    assert wall(later.next_at) == "Mon 2026-03-02 10:00"


def test_an_ack_after_an_escalation_stops_that_ladder():
    timeline = [
        Created(MON_9, "email", Priority.P2),
        Acknowledged(t("2026-03-02 09:50"), "servicedesk@example.com"),
    ]
    fired = walk(timeline, t("2026-03-04 17:00"))
    assert [(target, level) for target, _, level, _ in fired] == [
        ("response", 1),
        ("resolution", 1),
        ("resolution", 2),
        ("resolution", 3),
    ]


def test_an_ack_before_any_escalation_stops_nothing():
    timeline = [Created(MON_9, "email", Priority.P2), Acknowledged(t("2026-03-02 09:10"))]
    assert len(walk(timeline, t("2026-03-02 12:00"))) == 3


def test_a_solver_action_later_stops_the_resolution_ladder_too():
    timeline = [
        Created(MON_9, "email", Priority.P2),
        Responded(t("2026-03-02 09:30")),
        Acknowledged(t("2026-03-02 16:30"), "tina@example.com"),  # a comment after level 1
    ]
    fired = walk(timeline, t("2026-03-04 17:00"))
    assert fired == [("resolution", 1, 1, "Mon 2026-03-02 16:00")]


def test_a_priority_raise_sends_the_levels_already_passed_at_once():
    timeline = [
        Created(MON_9, "email", Priority.P4),
        PriorityChanged(t("2026-03-02 11:00"), Priority.P1),  # 2h elapsed of a 30m target
    ]
    fired = walk(timeline, t("2026-03-02 11:00"))
    assert fired == [
        ("response", 1, 1, "Mon 2026-03-02 11:00"),
        ("response", 1, 2, "Mon 2026-03-02 11:00"),
    ]


def test_a_later_due_time_does_not_resend_a_level():
    timeline = [
        Created(MON_9, "email", Priority.P3),  # response 4h: 75% at 12:00, due 14:00
        PriorityChanged(t("2026-03-02 12:30"), Priority.P4),  # now due Tue 09:00
    ]
    fired = walk(timeline, t("2026-03-03 12:00"))
    response = [(level, when) for target, _, level, when in fired if target == "response"]
    assert response == [
        (1, "Mon 2026-03-02 12:00"),
        (2, "Tue 2026-03-03 09:00"),
        (3, "Tue 2026-03-03 11:00"),
    ]


def test_a_closed_incident_is_never_escalated():
    timeline = [
        Created(MON_9, "email", Priority.P1),
        StatusChanged(t("2026-03-02 09:05"), "Closed", StatusKind.CLOSED),
    ]
    assert walk(timeline, t("2026-03-06 17:00"), step=H) == []
    status = compute(timeline, POLICY, t("2026-03-06 17:00"))
    result = plan(status, LADDER, [], t("2026-03-06 17:00"))
    assert (result.due, result.next_at) == ((), None)


def test_a_resolved_incident_is_never_escalated_but_a_reopen_starts_a_new_cycle():
    timeline = [
        Created(MON_9, "email", Priority.P2),
        Responded(t("2026-03-02 09:10")),
        StatusChanged(t("2026-03-02 14:00"), "Resolved", StatusKind.RESOLVED),
        StatusChanged(t("2026-03-03 09:00"), "New", StatusKind.OPEN),
    ]
    fired = walk(timeline, t("2026-03-04 12:00"))
    assert fired == [
        ("resolution", 2, 1, "Tue 2026-03-03 16:00"),
        ("resolution", 2, 2, "Wed 2026-03-04 09:00"),
        ("resolution", 2, 3, "Wed 2026-03-04 11:00"),
    ]


def test_a_paused_clock_announces_nothing_until_it_runs_again():
    timeline = [
        Created(MON_9, "email", Priority.P2),
        Responded(t("2026-03-02 09:10")),
        StatusChanged(t("2026-03-02 10:00"), "Waiting", StatusKind.OPEN, paused=True),
    ]
    now = t("2026-03-05 10:00")
    result = plan(compute(timeline, POLICY, now), LADDER, [], now)
    assert (result.due, result.next_at) == ((), None)
    resumed = [*timeline, StatusChanged(now, "Solution", StatusKind.OPEN)]
    result = plan(compute(resumed, POLICY, now), LADDER, [], now)
    assert wall(result.next_at) == "Thu 2026-03-05 16:00"  # 1h before the pause, 5h after


def test_a_move_recomputes_the_moments_in_the_new_calendar():
    timeline = [
        Created(t("2026-03-06 16:00"), "email", Priority.P2),
        Responded(t("2026-03-06 16:05")),
        Moved(t("2026-03-06 17:00"), "network"),
    ]
    fired = walk(timeline, t("2026-03-07 04:00"), service="network")
    assert fired == [
        ("resolution", 1, 1, "Fri 2026-03-06 22:00"),
        ("resolution", 1, 2, "Sat 2026-03-07 00:00"),
        ("resolution", 1, 3, "Sat 2026-03-07 02:00"),
    ]


def test_a_level_can_be_limited_to_one_target():
    status = compute([Created(MON_9, "quiet", Priority.P2)], POLICY, t("2026-03-03 10:00"))
    result = plan(status, RESOLUTION_ONLY, [], t("2026-03-03 10:00"))
    assert [(e.target, e.level.number) for e in result.due] == [(RESOLUTION, 1)]
    assert result.due[0].late_by == H
    assert level_moments(status.response, RESOLUTION_ONLY) == []


@pytest.mark.parametrize(
    ("names", "assignee", "expected"),
    [
        (("assignee", "first_line"), "tina@example.com", ("tina@example.com", "desk@example.com")),
        (("assignee", "first_line"), None, ("desk@example.com",)),
        (("team", "first_line"), None, ("team@example.com", "desk@example.com")),
        (("team", "boss@example.com", "team"), None, ("team@example.com", "boss@example.com")),
    ],
)
def test_recipients_are_roles_or_addresses(names, assignee, expected):
    service = ServiceConfig(team="team@example.com", first_line="desk@example.com")
    level = Level(1, Trigger(percent=75), names)
    assert recipients(level, service, assignee) == expected
