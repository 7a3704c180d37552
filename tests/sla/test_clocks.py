"""SLA clocks from incident timelines: responses, priority changes, moves, pauses, reopens."""

from datetime import UTC, datetime, timedelta

import pytest

from mailproc.durations import BusinessDays
from mailproc.sla.clocks import (
    Acknowledged,
    Created,
    Level,
    Moved,
    Phase,
    Policy,
    PriorityChanged,
    Responded,
    ServicePolicy,
    Standing,
    StatusChanged,
    Targets,
    Trigger,
    compute,
    local_time,
)
from mailproc.sla.ladder import level_moments
from mailproc.vocabulary import Priority, SlaTarget, StatusKind
from tests.support.slakit import LADDER, OFFICE, POLICY, PRAGUE, H, t, wall

MON_9 = t("2026-03-02 09:00")  # Monday 2 March 2026, 09:00 in Prague
P3_EMAIL = Created(MON_9, "email", Priority.P3)
WAITING = StatusChanged(t("2026-03-02 10:00"), "Waiting", StatusKind.OPEN, paused=True)
WORKING = StatusChanged(t("2026-03-03 10:00"), "Solution", StatusKind.OPEN)
RESOLVED = StatusChanged(t("2026-03-02 11:00"), "Resolved", StatusKind.RESOLVED)
REOPENED = StatusChanged(t("2026-03-03 09:00"), "New", StatusKind.OPEN)
CLOSED = StatusChanged(t("2026-03-02 11:00"), "Closed", StatusKind.CLOSED)

# (timeline, now) -> (response due, standing, resolution due, standing), walls in Prague time
TABLE = [
    pytest.param(
        [P3_EMAIL],
        "2026-03-02 10:00",
        ("Mon 2026-03-02 14:00", "on track", "Thu 2026-03-05 09:00", "on track"),
        id="fresh P3: 4h over lunch, 24h over three days",
    ),
    pytest.param(
        [P3_EMAIL],
        "2026-03-02 12:30",
        ("Mon 2026-03-02 14:00", "at risk", "Thu 2026-03-05 09:00", "on track"),
        id="at risk from 75% of the target",
    ),
    pytest.param(
        [P3_EMAIL],
        "2026-03-02 14:00",
        ("Mon 2026-03-02 14:00", "breached", "Thu 2026-03-05 09:00", "on track"),
        id="breached at the due time",
    ),
    pytest.param(
        [P3_EMAIL, Responded(t("2026-03-02 10:00"))],
        "2026-03-04 11:00",
        ("Mon 2026-03-02 14:00", "met", "Thu 2026-03-05 09:00", "at risk"),
        id="assigned in time: response met",
    ),
    pytest.param(
        [P3_EMAIL, Responded(t("2026-03-02 15:00"), "first action")],
        "2026-03-02 16:00",
        ("Mon 2026-03-02 14:00", "breached", "Thu 2026-03-05 09:00", "on track"),
        id="responded late stays breached",
    ),
    pytest.param(
        [P3_EMAIL, PriorityChanged(t("2026-03-02 10:00"), Priority.P1)],
        "2026-03-02 10:00",
        ("Mon 2026-03-02 09:30", "breached", "Mon 2026-03-02 14:00", "on track"),
        id="raised to P1: the new target counted from the start",
    ),
    pytest.param(
        [P3_EMAIL, PriorityChanged(t("2026-03-02 09:20"), Priority.P4)],
        "2026-03-02 09:30",
        ("Tue 2026-03-03 09:00", "on track", "Mon 2026-03-09 09:00", "on track"),
        id="lowered to P4: due later, elapsed time kept",
    ),
    pytest.param(
        [
            Created(t("2026-03-06 15:00"), "email", Priority.P3),
            Moved(t("2026-03-06 16:00"), "network"),
        ],
        "2026-03-06 16:00",
        ("Fri 2026-03-06 19:00", "on track", "Sat 2026-03-07 15:00", "on track"),
        id="moved to a 24x7 service: the rest counts around the clock",
    ),
    pytest.param(
        [
            Created(t("2026-03-06 20:00"), "network", Priority.P2),
            Moved(t("2026-03-07 00:00"), "email"),
        ],
        "2026-03-07 00:00",
        ("Fri 2026-03-06 21:00", "breached", "Mon 2026-03-09 12:00", "on track"),
        id="moved to an office service: the rest waits for Monday",
    ),
    pytest.param(
        [P3_EMAIL, WAITING],
        "2026-03-02 15:00",
        ("Mon 2026-03-02 14:00", "breached", None, "on track"),
        id="paused: no resolution due time, response keeps running",
    ),
    pytest.param(
        [P3_EMAIL, WAITING, WORKING],
        "2026-03-03 10:00",
        ("Mon 2026-03-02 14:00", "breached", "Fri 2026-03-06 09:00", "on track"),
        id="resumed: the paused day does not count",
    ),
    pytest.param(
        [P3_EMAIL, RESOLVED],
        "2026-03-09 10:00",
        ("Mon 2026-03-02 14:00", "met", "Thu 2026-03-05 09:00", "met"),
        id="resolved: both clocks stop, met",
    ),
    pytest.param(
        [P3_EMAIL, RESOLVED, REOPENED],
        "2026-03-03 09:00",
        ("Mon 2026-03-02 14:00", "met", "Fri 2026-03-06 09:00", "on track"),
        id="reopened: the resolution clock restarts from zero",
    ),
    pytest.param(
        [Created(t("2026-03-27 16:00"), "email", Priority.P2)],
        "2026-03-27 16:00",
        ("Fri 2026-03-27 17:00", "on track", "Mon 2026-03-30 16:00", "on track"),
        id="over the spring DST weekend",
    ),
    pytest.param(
        [Created(t("2026-04-02 16:00"), "email", Priority.P2)],
        "2026-04-02 16:00",
        ("Thu 2026-04-02 17:00", "on track", "Tue 2026-04-07 16:00", "on track"),
        id="over Easter holidays",
    ),
]


@pytest.mark.parametrize(("timeline", "now", "expected"), TABLE)
def test_due_times_and_standings(timeline, now, expected):
    status = compute(timeline, POLICY, t(now))
    got = (
        wall(status.response.due),
        status.response.standing.value,
        wall(status.resolution.due),
        status.resolution.standing.value,
    )
    assert got == expected


def test_a_pause_keeps_the_elapsed_time_and_the_phase():
    status = compute([P3_EMAIL, WAITING], POLICY, t("2026-03-02 15:00"))
    assert status.resolution.phase is Phase.PAUSED
    assert status.resolution.elapsed == H
    assert status.resolution.remaining == 23 * H
    assert status.response.phase is Phase.RUNNING


def test_a_move_while_paused_stays_paused_in_the_new_calendar():
    timeline = [P3_EMAIL, WAITING, Moved(t("2026-03-02 11:00"), "network")]
    status = compute(timeline, POLICY, t("2026-03-02 12:00"))
    assert status.resolution.phase is Phase.PAUSED
    assert status.resolution.clock.calendar.name == "24x7"
    resumed = compute(
        [*timeline, StatusChanged(t("2026-03-02 12:00"), "New", StatusKind.OPEN)],
        POLICY,
        t("2026-03-02 12:00"),
    )
    assert wall(resumed.resolution.due) == "Tue 2026-03-03 11:00"  # 1h done, 23h around the clock


def test_a_stopped_clock_keeps_the_target_it_stopped_under():
    timeline = [P3_EMAIL, RESOLVED, PriorityChanged(t("2026-03-02 12:00"), Priority.P1)]
    status = compute(timeline, POLICY, t("2026-03-02 12:00"))
    assert status.resolution.goal == 24 * H
    assert status.resolution.standing is Standing.MET
    assert status.priority is Priority.P1


def test_a_reopen_counts_cycles_and_leaves_the_response_alone():
    reopened_twice = [
        P3_EMAIL,
        RESOLVED,
        REOPENED,
        StatusChanged(t("2026-03-03 10:00"), "Resolved", StatusKind.RESOLVED),
        StatusChanged(t("2026-03-03 11:00"), "New", StatusKind.OPEN),
    ]
    status = compute(reopened_twice, POLICY, t("2026-03-03 11:00"))
    assert (status.resolution.cycle, status.response.cycle) == (3, 1)
    assert status.resolution.elapsed == 0 * H
    assert status.response.stopped_at == RESOLVED.at


def test_closing_stops_both_clocks_and_closed_to_resolved_changes_nothing():
    timeline = [P3_EMAIL, CLOSED]
    status = compute(timeline, POLICY, t("2026-03-09 09:00"))
    assert {s.phase for s in status.targets} == {Phase.STOPPED}
    assert status.resolution.elapsed == 2 * H


def test_acknowledgments_are_collected_for_the_ladder():
    ack = Acknowledged(t("2026-03-02 10:00"), "boss@example.com")
    status = compute([P3_EMAIL, ack], POLICY, t("2026-03-02 10:00"))
    assert status.acknowledged == (ack.at,)


def test_the_explanation_walks_through_every_step():
    timeline = [
        P3_EMAIL,
        PriorityChanged(t("2026-03-02 10:00"), Priority.P2),
        WAITING,
        Moved(t("2026-03-02 11:00"), "network"),
        StatusChanged(t("2026-03-02 13:00"), "Solution", StatusKind.OPEN),
        StatusChanged(t("2026-03-02 14:00"), "Resolved", StatusKind.RESOLVED),
        StatusChanged(t("2026-03-02 15:00"), "New", StatusKind.OPEN),
    ]
    steps = [
        step.text
        for step in compute(timeline, POLICY, t("2026-03-02 15:00"), explain=True).resolution.steps
    ]
    assert steps == [
        "created in service email with priority P3: calendar office (Europe/Prague; "
        "Mon–Fri 08:00–12:00, 13:00–17:00; Sat–Sun off; holidays CZ), target 24h",
        "priority P3 → P2: target 8h counted from the start; 1h already elapsed carries over",
        "status Waiting: the clock pauses",
        "moved email → network: calendar 24x7 (UTC; 24×7), target 8h; 1h elapsed carries over",
        "status Solution: the clock runs again",
        "resolved (Resolved): the clock stops after 2h",
        "reopened (New): the clock starts again from zero, cycle 2, target 8h",
        "running, 0m of 8h elapsed, due 2026-03-02 22:00 UTC — on track",
    ]


def test_explanation_of_a_met_and_of_a_paused_target():
    met = compute(
        [P3_EMAIL, Responded(t("2026-03-02 10:00"))], POLICY, t("2026-03-02 11:00"), explain=True
    )
    assert met.response.steps[-1].text == (
        "stopped at 2026-03-02 10:00 CET, 1h of 4h elapsed, due 2026-03-02 14:00 CET — met"
    )
    paused = compute([P3_EMAIL, WAITING], POLICY, t("2026-03-02 11:00"), explain=True)
    assert compute([P3_EMAIL, WAITING], POLICY, t("2026-03-02 11:00")).resolution.steps == ()
    assert paused.resolution.steps[-1].text == (
        "paused, 1h of 24h elapsed: no due time while paused — on track"
    )


def test_a_timeline_must_start_with_its_creation():
    with pytest.raises(ValueError, match="starts with Created"):
        compute([Responded(MON_9)], POLICY, MON_9)
    with pytest.raises(ValueError, match="a second Created"):
        compute([P3_EMAIL, P3_EMAIL], POLICY, MON_9)


def test_targets_are_looked_up_by_name():
    status = compute([P3_EMAIL], POLICY, MON_9)
    assert status.of(SlaTarget.RESPONSE) is status.response
    assert status.of(SlaTarget.RESOLUTION) is status.resolution


# --- targets in business days -----------------------------------------------------------------

DAYS = Policy(
    {
        "email": ServicePolicy(
            OFFICE, dict.fromkeys(Priority, Targets(1 * H, BusinessDays(3))), LADDER
        )
    }
)


def test_a_day_target_is_due_at_the_end_of_the_third_working_day():
    status = compute([P3_EMAIL], DAYS, MON_9).resolution
    assert wall(status.due) == "Wed 2026-03-04 17:00"
    assert status.goal == 23 * H  # 7h left on Monday, 8h on Tuesday and Wednesday
    afternoon = compute([Created(t("2026-03-02 13:00"), "email", Priority.P3)], DAYS, MON_9)
    assert wall(afternoon.resolution.due) == "Thu 2026-03-05 17:00"  # after the 12:00 cut-off


def test_a_pause_pushes_a_day_target_by_the_business_time_it_lasted():
    paused = [P3_EMAIL, WAITING, WORKING]  # Mon 10:00 to Tue 10:00: 8h of business time
    assert wall(compute(paused, DAYS, t("2026-03-03 10:00")).resolution.due) == (
        "Thu 2026-03-05 17:00"
    )


def test_a_level_at_half_a_day_target_is_half_the_working_time_to_its_deadline():
    ladder = (Level(1, Trigger(percent=50), ("team",)),)
    policy = Policy(
        {
            "email": ServicePolicy(
                OFFICE, dict.fromkeys(Priority, Targets(H, BusinessDays(3))), ladder
            )
        }
    )
    status = compute([P3_EMAIL], policy, MON_9).resolution
    ((_, moment),) = level_moments(status, ladder)
    assert wall(moment) == "Tue 2026-03-03 13:30"  # 11h30m of the 23h: 7h on Monday


def test_the_explanation_shows_a_day_target_and_its_business_time():
    steps = compute([P3_EMAIL], DAYS, MON_9, explain=True).resolution.steps
    assert steps[0].text.endswith(
        "target 3bd (end of working day 3, the opening day counting before 12:00: "
        "23h of business time)"
    )
    assert steps[-1].text == ("running, 0m of 23h elapsed, due 2026-03-04 17:00 CET — on track")


def test_fractions_of_a_second_are_rounded_up_in_levels_and_shown_times():
    """A third of 1h is 1,200 s, a level at 33.3% is 1,198.8 s: 1,199 s."""
    assert Trigger(percent=33.3).threshold(H) == timedelta(seconds=1199)
    moment = datetime(2026, 3, 2, 8, 59, 59, 400_000, tzinfo=UTC)
    assert local_time(moment, PRAGUE) == "2026-03-02 10:00 CET"
